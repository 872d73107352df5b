"""The train/* scalars of every batch, from the model's ``step_logs`` to the loggers and the progress bar.

Models add this callback themselves (``configure_callbacks``), so any Trainer logs them. It writes what
``LightningModule.log`` would, every ``trainer.log_every_n_steps`` batches and at a stop, with one device read per
logged batch and without ``log``'s per-scalar bookkeeping (about 0.8 ms a scalar on a CPU: a quarter of a small
model's batch).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from gan_lightning.loggers import publish_scalars


class TrainScalars(L.Callback):
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        logs, pl_module.step_logs = pl_module.step_logs, {}
        if not logs:
            return
        # (trainer.callback_metrics already holds them: training_step puts them there every batch.)
        every = trainer.log_every_n_steps
        if every == 0 or (trainer.global_step % every and not trainer.should_stop):
            return
        numbers = dict(zip(logs, torch.stack([v.float().reshape(()) for v in logs.values()]).tolist(), strict=True))
        numbers["skipped_steps"] = float(pl_module.engine.skipped_steps)
        if pl_module.grad_scaler() is not None:
            numbers["amp_skipped"] = float(pl_module.engine.amp_skipped_steps)
        publish_scalars(trainer, {f"train/{k}": v for k, v in numbers.items()})
        trainer.progress_bar_metrics.update({k: numbers[k] for k in ("d_loss", "g_loss") if k in numbers})
