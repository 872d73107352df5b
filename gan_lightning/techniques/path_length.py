"""Lazy path length regularisation (Karras et al. 2020, section 3.2): a fixed-size step in w should move the image
by a fixed amount, whatever w.

On every ``pl_interval``-th G update (0, 4, 8, ...; with n_critic = 1 these are batches 0, 4, 8, ...) G gains
pl_weight * interval * mean (L - a)^2, with L = sqrt(mean over layers of |J_w^T y|^2) (the reference's per-sample
length), J_w the Jacobian of the synthesis at the per-layer ws (style mixing included), y ~ N(0, I) / sqrt(H * W) an
image of noise, and ``a`` the running mean of the lengths (EMA, ``pl_decay``), kept on the model as the ``pl_mean``
buffer (checkpointed). The batch is N // ``pl_batch_shrink`` fresh latents. The reference takes a separate G step for
the regulariser; here the term is folded into that batch's G loss (the same gradients summed into one update).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from gan_lightning.errors import ConfigError
from gan_lightning.techniques.base import LossTerm, Technique


@dataclass
class PathLengthConfig:
    pl_weight: float = 0.0  # 0 = off
    pl_interval: int = 4  # batches between two path length terms
    pl_decay: float = 0.01  # EMA rate of the running mean of path lengths
    pl_batch_shrink: int = 2  # the term's batch is the data batch // this


class PathLength(Technique):
    Config = PathLengthConfig
    switch = "pl_weight"

    @classmethod
    def checks(cls, config: Any) -> list[tuple[str, bool, str]]:
        return [("pl_weight", config.pl_weight >= 0, "a float >= 0"),
                ("pl_interval", config.pl_interval >= 1, "an int >= 1"),
                ("pl_decay", 0.0 < config.pl_decay <= 1.0, "a float in (0, 1]"),
                ("pl_batch_shrink", config.pl_batch_shrink >= 1, "an int >= 1")]

    def setup(self, model: Any) -> None:
        if not all(hasattr(model.generator, name) for name in ("training_ws", "synthesis")):
            raise ConfigError(f"model.pl_weight: {model.registry_name}'s generator has no separate mapping and "
                              "synthesis (training_ws, synthesis) to regularise")
        model.register_buffer("pl_mean", torch.zeros(()))

    def generator_term(self, model: Any, batch: Any, fakes: Any) -> LossTerm | None:
        interval = self.config.pl_interval
        g_step = (model.batch_count + 1) // self.config.n_critic - 1  # G updates before this one (n_critic >= 1)
        if g_step % interval:
            return None
        n = max(1, batch.real.shape[0] // self.config.pl_batch_shrink)
        labels = batch.labels[:n] if batch.labels is not None else None
        generator = model.generator
        ws = generator.training_ws(model.sample_latent(n), labels)
        images = generator.synthesis(ws)
        noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
        (grads,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
        lengths = grads.square().sum(2).mean(1).sqrt()
        pl_mean = model.pl_mean.lerp(lengths.mean(), self.config.pl_decay)  # not detached here, as the reference
        model.pl_mean.copy_(pl_mean.detach())
        return "pl", (lengths - pl_mean).square().mean(), self.config.pl_weight * interval
