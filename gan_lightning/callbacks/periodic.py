"""Scheduling shared by the sample, metric and mode callbacks: every N training batches and once at the end.

Their work must not change training: each run happens inside a fork of every RNG stream (torch CPU and CUDA,
numpy, Python), so building a feature extractor or drawing evaluation latents leaves the training streams where
they were, and a run resumed after an evaluation continues bit for bit like one that never stopped.

Under DDP every rank runs them (evaluations split their samples across ranks), on rank 0's buffers: each rank's
batchnorm statistics follow its own shard until DDP broadcasts rank 0's at the next forward, and the checkpoint
holds rank 0's.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
import numpy as np
import torch

from gan_lightning import interrupts


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Run the body with every global RNG stream restored afterwards."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)


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
        if interrupts.agreed() is not None:
            return  # stopping on a signal: the time left is for the checkpoint
        if trainer.global_step != self.last_step:
            self.last_step = trainer.global_step
            if trainer.world_size > 1:
                broadcast_buffers(pl_module)
            with preserved_rng():
                self.run(trainer, pl_module)


@torch.no_grad()
def broadcast_buffers(module: torch.nn.Module) -> None:
    """Rank 0's buffers on every rank, what DDP does at the start of each forward."""
    for buffer in module.buffers():
        torch.distributed.broadcast(buffer, src=0)
