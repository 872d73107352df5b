"""An exponential moving average of G's weights (Yazici et al. 2019; Karras et al.): the copy that samples, grids and
metrics use, smoother than G itself. It copies G for the first ``ema_start`` batches; batchnorm statistics are
copied, not averaged.

``ema_rampup`` (stylegan2-ada-pytorch's ``ema_rampup``): the average's half-life, ``ema_decay``'s in batches, is
capped at ``ema_rampup`` times the batches trained so far, so early in a run the average follows G closely instead
of holding on to the random initial weights for thousands of batches."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch

from gan_lightning.techniques.base import Technique


@dataclass
class EMAConfig:
    ema_decay: float | None = None  # e.g. 0.999; null = off
    ema_start: int = 0  # batches before the average starts (it copies G until then)
    ema_rampup: float | None = None  # e.g. 0.05: half-life at most this fraction of the batches so far; null = off


class EMA(Technique):
    Config = EMAConfig
    switch = "ema_decay"

    @classmethod
    def checks(cls, config: Any) -> list[tuple[str, bool, str]]:
        return [("ema_decay", config.ema_decay is None or 0.0 <= config.ema_decay < 1.0, "null or a float in [0, 1)"),
                ("ema_start", config.ema_start >= 0, "an int >= 0"),
                ("ema_rampup", config.ema_rampup is None or config.ema_rampup > 0, "null or a float > 0")]

    def decay(self, batches_done: int) -> float:
        """The per-batch decay after ``batches_done`` batches (0 before ``ema_start``: a plain copy)."""
        decay = self.config.ema_decay
        if batches_done < self.config.ema_start:
            return 0.0
        if self.config.ema_rampup is not None and decay > 0.0:
            half_life = math.log(0.5) / math.log(decay)  # in batches
            half_life = min(half_life, batches_done * self.config.ema_rampup)
            decay = 0.5 ** (1.0 / half_life) if half_life > 0 else 0.0
        return decay

    def setup(self, model: Any) -> None:
        # Left in train mode like the rest of the module (Lightning warns otherwise); sampling uses eval mode.
        model.generator_ema = copy.deepcopy(model.generator).requires_grad_(False)

    @torch.no_grad()
    def after_generator_step(self, model: Any) -> None:
        decay = self.decay(model.batch_count)
        for ema_param, param in zip(model.generator_ema.parameters(), model.generator.parameters(), strict=True):
            ema_param.lerp_(param.detach(), 1.0 - decay)
        for ema_buffer, buffer in zip(model.generator_ema.buffers(), model.generator.buffers(), strict=True):
            ema_buffer.copy_(buffer)
