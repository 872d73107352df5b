"""Lazy R1 regularisation (Mescheder et al. 2018; lazy form of Karras et al. 2020, section 3.5).

R1 penalises D's gradient on real data, gamma / 2 * E ||grad_x D(x)||^2. With discriminator augmentation on, x is
the real image before it, and the gradient flows back through the (differentiable) augmentation, as
stylegan2-ada-pytorch takes it. Lazily: only every ``r1_interval`` batches (the batches whose count is a multiple of
it: 0, 16, 32, ...), weighted by ``r1_interval`` so its average strength is unchanged. The reference takes a
separate optimizer step for the regulariser; here it is folded into that batch's D loss (one D step on loss +
gamma / 2 * interval * R1), which is the same gradient summed into one update.

``r1_gamma: null`` is the stylegan2-ada-pytorch heuristic 0.0002 * resolution^2 / batch, with the batch taken as 32
(the model does not know the datamodule's batch size): set r1_gamma explicitly for other batch sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from gan_lightning.techniques.base import LossTerm, Technique

HEURISTIC_BATCH = 32


@dataclass
class R1Config:
    r1_gamma: float | None = 0.0  # gamma; 0 = off; null = 0.0002 * resolution^2 / 32
    r1_interval: int = 16  # batches between two R1 terms (1 = every batch, not lazy)


def r1_gamma(config: Any, resolution: int) -> float:
    """The configured gamma, or the reference heuristic for ``resolution`` (image side) when it is null."""
    return config.r1_gamma if config.r1_gamma is not None else 0.0002 * resolution**2 / HEURISTIC_BATCH


def r1_penalty(critic: Any, real: torch.Tensor, output_scale: float = 1.0) -> torch.Tensor:
    """Mean over D's scores of ||grad D(x)||^2 at the real inputs, differentiable w.r.t. D's weights: per sample, or
    with packing per pack of m samples (a pack's gradient is its members' together, so its squared norm is theirs
    summed), like WGAN-GP's penalty on packed inputs."""
    real = real.detach().requires_grad_(True)
    scores = critic(real)
    (grad,) = torch.autograd.grad(scores.sum() * output_scale, real, create_graph=True)
    return (grad / output_scale).square().sum() / scores.numel()


class R1(Technique):
    Config = R1Config
    switch = "r1_gamma"

    @classmethod
    def checks(cls, config: Any) -> list[tuple[str, bool, str]]:
        return [("r1_gamma", config.r1_gamma is None or config.r1_gamma >= 0, "null or a float >= 0"),
                ("r1_interval", config.r1_interval >= 1, "an int >= 1")]

    def discriminator_term(self, model: Any, batch: Any, fakes: Any) -> LossTerm | None:
        interval = self.config.r1_interval
        if model.batch_count % interval:
            return None
        # D's score of the real images as the data gives them: through the augmentation when it is on
        critic = partial(model.discriminate, labels=batch.labels)
        scaler = model.grad_scaler()  # 16-mixed: scale D's outputs into autograd.grad like every loss
        penalty = r1_penalty(critic, batch.real, 1.0 if scaler is None else float(scaler.get_scale()))
        return "r1", penalty, r1_gamma(self.config, model.sample_shape[-1]) / 2 * interval
