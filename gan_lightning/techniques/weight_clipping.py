"""WGAN's weight clipping (Arjovsky et al. 2017): every critic weight clamped to [-c, c] after each critic update,
a crude way to keep the critic Lipschitz (c = 0.01 in the paper)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from gan_lightning.techniques.base import Technique


@dataclass
class WeightClippingConfig:
    weight_clip: float | None = None  # c; null = off


class WeightClipping(Technique):
    Config = WeightClippingConfig
    switch = "weight_clip"

    @classmethod
    def checks(cls, config: Any) -> list[tuple[str, bool, str]]:
        return [("weight_clip", config.weight_clip is None or config.weight_clip > 0, "null or a float > 0")]

    @torch.no_grad()
    def after_discriminator_step(self, model: Any) -> None:
        for param in model.discriminator_parameters():
            param.clamp_(-self.config.weight_clip, self.config.weight_clip)
