"""Scheduling shared by the sample, metric and mode callbacks: every N training batches and once at the end."""

from __future__ import annotations

import abc
from typing import Any

import lightning as L
import torch


class PeriodicCallback(L.Callback, abc.ABC):
    """Calls :meth:`run` after every ``every_n_steps``-th training batch, after the last one (so a monitored
    metric exists when the final checkpoint is chosen), and at train end; never twice for one step."""

    def __init__(self, every_n_steps: int):
        self.every_n_steps = every_n_steps
        self.last_step = -1

    @abc.abstractmethod
    def run(self, trainer: L.Trainer, pl_module: L.LightningModule) -> Any:
        """The periodic work; ``trainer.global_step`` is the number of batches trained so far."""

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if step % self.every_n_steps == 0 or step == trainer.max_steps:
            self._run_once(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._run_once(trainer, pl_module)

    def _run_once(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step != self.last_step:
            self.last_step = trainer.global_step
            self.run(trainer, pl_module)


def publish_scalars(trainer: L.Trainer, numbers: dict[str, float]) -> None:
    """Send scalars computed in a callback to every logger and to ``trainer.callback_metrics``.

    ``pl_module.log`` from ``on_train_batch_end`` would re-emit the values with the next batch too; the
    step is the index Lightning gives this batch's ``train/*`` scalars. ``callback_metrics`` is where
    ``ModelCheckpoint(monitor=...)`` looks.
    """
    for logger in trainer.loggers:
        logger.log_metrics(numbers, step=max(trainer.global_step - 1, 0))
    trainer.callback_metrics.update({k: torch.tensor(v) for k, v in numbers.items()})
