"""An exponential moving average of G's weights (Yazici et al. 2019; Karras et al.): the copy that samples, grids and
metrics use, smoother than G itself. It copies G for the first ``ema_start`` batches; batchnorm statistics are
copied, not averaged."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch

from gan_lightning.techniques.base import Technique


@dataclass
class EMAConfig:
    ema_decay: float | None = None  # e.g. 0.999; null = off
    ema_start: int = 0  # batches before the average starts (it copies G until then)


class EMA(Technique):
    Config = EMAConfig
    switch = "ema_decay"

    @classmethod
    def checks(cls, config: Any) -> list[tuple[str, bool, str]]:
        return [("ema_decay", config.ema_decay is None or 0.0 <= config.ema_decay < 1.0, "null or a float in [0, 1)"),
                ("ema_start", config.ema_start >= 0, "an int >= 0")]

    def setup(self, model: Any) -> None:
        # Left in train mode like the rest of the module (Lightning warns otherwise); sampling uses eval mode.
        model.generator_ema = copy.deepcopy(model.generator).requires_grad_(False)

    @torch.no_grad()
    def after_generator_step(self, model: Any) -> None:
        decay = self.config.ema_decay if model.batch_count >= self.config.ema_start else 0.0
        for ema_param, param in zip(model.generator_ema.parameters(), model.generator.parameters(), strict=True):
            ema_param.lerp_(param.detach(), 1.0 - decay)
        for ema_buffer, buffer in zip(model.generator_ema.buffers(), model.generator.buffers(), strict=True):
            ema_buffer.copy_(buffer)
