"""WGAN-GP's gradient penalty (Gulrajani et al. 2017): lambda * (||grad D(x_hat)||_2 - 1)^2 at random interpolates
of real and fake inputs, added to the critic's loss (lambda = 10). Per sample, so the critic must not use batchnorm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from gan_lightning.errors import ConfigError
from gan_lightning.losses import gradient_penalty
from gan_lightning.techniques.base import LossTerm, Technique


@dataclass
class GradientPenaltyConfig:
    gradient_penalty: float = 0.0  # lambda; 0 = off


class GradientPenalty(Technique):
    Config = GradientPenaltyConfig
    switch = "gradient_penalty"

    @classmethod
    def checks(cls, config: Any) -> list[tuple[str, bool, str]]:
        return [("gradient_penalty", config.gradient_penalty >= 0, "a float >= 0")]

    def setup(self, model: Any) -> None:
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.discriminator.modules()):
            raise ConfigError("model.gradient_penalty: the critic has batchnorm, which makes the penalty "
                              "per batch, not per sample (Gulrajani et al.); use a critic without it "
                              "(dcgan-style nets: model.d_norm=layer or none)")

    def discriminator_term(self, model: Any, batch: Any, fakes: Any) -> LossTerm:
        critic, real, fake = model.critic_inputs(batch, fakes)
        # Under 16-mixed the critic's outputs are scaled into autograd.grad like every loss (the AMP recipe).
        scaler = model.grad_scaler()
        penalty = gradient_penalty(critic, real, fake, output_scale=1.0 if scaler is None else scaler.get_scale())
        return "gp", penalty, self.config.gradient_penalty
