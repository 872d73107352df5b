"""Stopping a run on SIGINT / SIGTERM / SIGUSR1 at a batch boundary, with its state saved.

The handlers only record the signal; :class:`GracefulStop` turns the record into ``trainer.should_stop`` at the
end of the batch in flight (under DDP, on every rank at the same batch: any rank's signal stops all), so the run
leaves ``fit`` normally and ``train`` saves ``checkpoints/last.ckpt`` and exits with 128 + the signal number
(130 for SIGINT, 143 for SIGTERM). Periodic callbacks skip their work once a stop is requested: a scheduler's
grace period is for the checkpoint, not for an FID evaluation.

A second SIGINT aborts at once without saving (the previous ``last.ckpt`` is intact: writes are atomic).
SIGUSR1 is the signal SLURM sends ahead of a time limit (``--signal=USR1@90``); a requeued job continues the run
with ``--resume``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

import lightning as L

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)

_requested: int | None = None  # the first stop signal received by this process, or None
_agreed: int | None = None  # the stop every rank has agreed on at the last batch end (GracefulStop), or None


def requested() -> int | None:
    return _requested


def agreed() -> int | None:
    """The stop decided at a batch end, the same on every DDP rank. Collective work (evaluations) must branch on
    this, not on :func:`requested`: a signal landing on one rank between two batch ends would otherwise send that
    rank past a collective the others wait in."""
    return _agreed


def reset() -> None:
    global _requested, _agreed
    _requested = _agreed = None


def _record(signum: int, frame: Any) -> None:
    global _requested
    if signum == signal.SIGINT and _requested == signal.SIGINT:
        # The user insists: give Ctrl-C back its default meaning and stop now, without saving.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise KeyboardInterrupt
    if _requested is None:
        _requested = signum


def install() -> Callable[[], None]:
    """Route the stop signals to the recorder; returns a function restoring the previous handlers. A no-op off the
    main thread (Python only lets the main thread install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    reset()
    previous = {signum: signal.signal(signum, _record) for signum in STOP_SIGNALS}

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    return restore


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class GracefulStop(L.Callback):
    """Ends training after the batch in flight once a stop signal arrived."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning installs its own SIGTERM handler at fit start; its handler ends the run by raising SystemExit
        # (exit status 0, no checkpoint). Take the stop signals back, keeping a SIGTERM it already recorded.
        connector = getattr(trainer, "_signal_connector", None)
        if connector is not None and connector.received_sigterm:
            _record(signal.SIGTERM, None)
            connector.received_sigterm = False
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                signal.signal(signum, _record)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        global _requested, _agreed
        local = _requested
        if trainer.world_size > 1:  # one collective per batch, so every rank stops after the same batch
            import torch

            flag = torch.tensor(float(local or 0), device=pl_module.device)
            flag = trainer.strategy.reduce(flag, reduce_op="max")
            local = int(flag.item()) or None
        if local is not None:
            _requested = _agreed = self.signum = local  # a rank that got no signal itself stops all the same
            trainer.should_stop = True
