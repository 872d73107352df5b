"""Training progress as plain lines, for output that is not a terminal (nohup, SLURM, CI logs).

A progress bar redraws itself with carriage returns: redirected to a file, a 2,500-batch run leaves about half a
megabyte of redraws on one line. Here, every ``every`` batches (and at the last one) rank zero prints one line:

    batch 200/2500 (8%) epoch 2 | d_loss 1.082 g_loss 1.512 | 0.94 batches/s, 3m33s elapsed, 40m48s left
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

import lightning as L


def progress_mode(setting: str, quiet: bool, stream: TextIO | None = None) -> str:
    """What ``run.progress`` means here: auto is a bar on a terminal and lines otherwise; quiet runs show none."""
    if quiet:
        return "none"
    if setting != "auto":
        return setting
    stream = sys.stdout if stream is None else stream
    return "bar" if stream.isatty() else "lines"


def duration(seconds: float) -> str:
    """12.3 -> "12.3s", 213.6 -> "3m34s", 7384 -> "2h03m04s"."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def total_batches(trainer: L.Trainer) -> int | None:
    """The batch the run stops at: trainer.max_steps (batches here), else max_epochs x batches per epoch, or None
    when neither bounds it."""
    if trainer.max_steps > 0:
        return trainer.max_steps
    epochs, per_epoch = trainer.max_epochs, trainer.num_training_batches
    if epochs is not None and epochs > 0 and math.isfinite(per_epoch):
        return epochs * int(per_epoch)
    return None


class ProgressLines(L.Callback):
    """One line every ``every`` training batches and at the last batch: batch, epoch, the losses of that batch,
    speed, elapsed and remaining time."""

    def __init__(self, every: int, stream: TextIO | None = None) -> None:
        self.every = every
        self.stream = stream
        self.started = 0.0
        self.first_batch = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.started, self.first_batch = time.perf_counter(), trainer.global_step  # a resumed run: from there

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        done, total = trainer.global_step, total_batches(trainer)
        if not trainer.is_global_zero or (done % self.every and done != total):
            return
        print(self.line(trainer, done, total), file=self.stream or sys.stdout, flush=True)

    def line(self, trainer: L.Trainer, done: int, total: int | None) -> str:
        elapsed = time.perf_counter() - self.started
        rate = (done - self.first_batch) / elapsed if elapsed > 0 else 0.0
        where = f"batch {done}/{total} ({100 * done / total:.0f}%)" if total else f"batch {done}"
        losses = " ".join(f"{key.removeprefix('train/')} {float(value):.4g}"
                          for key, value in sorted(trainer.callback_metrics.items())
                          if key.startswith("train/") and key.endswith("_loss"))  # one device read per line
        timing = f"{rate:.3g} batches/s, {duration(elapsed)} elapsed"
        if total and rate > 0:
            timing += f", {duration((total - done) / rate)} left"
        return " | ".join(part for part in (f"{where} epoch {trainer.current_epoch}", losses, timing) if part)
