"""Discriminator augmentation: everything D sees (reals and fakes, in D's and G's updates, R1's reals and gradient
penalties' inputs) passes through differentiable augmentations, so D cannot memorise a small training set and G is
not taught the augmentations (they are applied to both sides; Karras et al. 2020, Zhao et al. 2020). R1 takes its
gradient at the real image before the augmentation, through it, as stylegan2-ada-pytorch does.

``model.augment``:
- ``ada``: adaptive discriminator augmentation. ADA's ``augment_pipeline`` (``gan_lightning.nets.augment``) with
  probability p, starting at ``augment_p``. Every ``ada_interval`` batches p moves by
  sign(r_t - ada_target) * images / (ada_kimg * 1000), images being the real images of those batches
  (batch * interval), clamped at >= 0; r_t = E[sign(D(real))] over those batches measures how sure D is of the
  training set (the overfitting heuristic). So p can go from 0 to 1 in ada_kimg thousand images.
- ``fixed``: the same pipeline at a constant ``augment_p``.
- ``diffaugment``: DiffAugment's ``diffaugment_policy`` (color, translation, cutout) on every sample.

p (the ``augment_p`` buffer), r_t's running sums and its last value are buffers of the model: checkpointed, so a
resumed run adjusts p exactly as a straight one. Logged: ``train/ada_p`` (ada, fixed) and ``train/ada_rt`` (every
mode: the heuristic is worth watching whatever the augmentation). Under DDP the sums are reduced over ranks before
p moves, so every rank keeps the same p.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gan_lightning.errors import ConfigError
from gan_lightning.nets.augment import ADA_PIPELINES, COLOR, DIFFAUGMENT_OPS, ada_augment, diff_augment
from gan_lightning.techniques.base import Technique

AUGMENT_MODES = ("none", "ada", "fixed", "diffaugment")


@dataclass
class AugmentationConfig:
    augment: str = "none"  # none | ada | fixed | diffaugment
    augment_p: float = 0.0  # fixed: each transform's probability; ada: p at the start
    augment_pipeline: str = "bgc"  # ada, fixed: blit | geom | color | bg | bgc
    ada_target: float = 0.6  # r_t that p steers toward
    ada_interval: int = 4  # batches between two adjustments of p
    ada_kimg: float = 500.0  # thousands of real images over which p can move by 1
    diffaugment_policy: str = "color,translation,cutout"  # diffaugment: comma-separated ops


def _policy(config: Any) -> tuple[str, ...]:
    return tuple(op.strip() for op in config.diffaugment_policy.split(","))


class Augmentation(Technique):
    Config = AugmentationConfig
    switch = "augment"

    @classmethod
    def checks(cls, config: Any) -> list[tuple[str, bool, str]]:
        policy = _policy(config)
        return [("augment", config.augment in AUGMENT_MODES, ", ".join(AUGMENT_MODES)),
                ("augment_p", 0.0 <= config.augment_p <= 1.0, "a float in [0, 1]"),
                ("augment_pipeline", config.augment_pipeline in ADA_PIPELINES, ", ".join(ADA_PIPELINES)),
                ("ada_target", 0.0 <= config.ada_target < 1.0, "a float in [0, 1)"),
                ("ada_interval", config.ada_interval >= 1, "an int >= 1"),
                ("ada_kimg", config.ada_kimg > 0, "a float > 0"),
                ("diffaugment_policy", all(op in DIFFAUGMENT_OPS for op in policy) and len(set(policy)) == len(policy),
                 "comma-separated ops from " + ", ".join(DIFFAUGMENT_OPS))]

    @classmethod
    def check(cls, config: Any, model_cls: type) -> None:
        if config.augment == "fixed" and config.augment_p == 0:
            raise ConfigError("model.augment_p: augment=fixed needs a probability in (0, 1] (0 augments nothing)")
        if config.augment == "ada" and config.loss == "wasserstein":
            raise ConfigError("model.augment: ada reads sign(D(real)), which a Wasserstein critic's arbitrary offset "
                              "makes meaningless; use augment=fixed or augment=diffaugment")

    def setup(self, model: Any) -> None:
        shape = model.sample_shape
        if len(shape) != 3:
            raise ConfigError(f"model.augment: augmentations act on images; {model.registry_name}'s samples have "
                              f"shape {tuple(shape)}")
        self.model = model  # p lives on the model (a buffer: checkpointed, moved with it)
        self.channels = shape[0]
        self.mode = self.config.augment
        self.ops = ADA_PIPELINES[self.config.augment_pipeline] if self.mode != "diffaugment" else _policy(self.config)
        colour = any(op in COLOR for op in self.ops) or "color" in self.ops
        if colour and self.channels not in (1, 3):
            raise ConfigError(f"model.augment: colour transforms need 1- or 3-channel images, these have "
                              f"{self.channels}; choose augment_pipeline=bg (or a diffaugment_policy without color)")
        if "rotate90" in self.ops and shape[1] != shape[2]:
            raise ConfigError(f"model.augment_pipeline: 90-degree rotations need square images, these are "
                              f"{shape[1]}x{shape[2]}; choose geom or color")
        model.register_buffer("augment_p", torch.tensor(float(self.config.augment_p)))
        # sum of sign(D(real)), number of scores, real images, since the last adjustment; and the last r_t.
        model.register_buffer("ada_stats", torch.zeros(3, dtype=torch.float64))
        model.register_buffer("ada_rt", torch.zeros(()))

    def augment(self, images: Tensor, channels: int | None = None) -> Tensor:
        """``images`` (N x K*C x H x W) augmented, the K images of a sample with the same transform."""
        channels = channels or self.channels
        if self.mode == "diffaugment":
            return diff_augment(images, self.ops, channels)
        return ada_augment(images, self.model.augment_p, self.ops, channels)

    def d_input(self, x: Tensor) -> Tensor:
        # Latent GANs: with packing, x holds m samples per row along dim 1; each gets its own transform.
        n, total = x.shape[:2]
        samples = x.reshape(n * total // self.channels, self.channels, *x.shape[2:])
        return self.augment(samples).reshape(x.shape)

    def after_discriminator_step(self, model: Any) -> None:
        scores, images = model.real_scores
        signs = torch.sign(scores.detach()).double()
        model.ada_stats.add_(torch.stack([signs.sum(), torch.tensor(float(signs.numel()), dtype=torch.float64,
                                                                       device=signs.device),
                                          torch.tensor(float(images), dtype=torch.float64, device=signs.device)]))
        if (model.batch_count + 1) % self.config.ada_interval:
            return
        stats = model.ada_stats.clone()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(stats)  # the same p on every rank
        measured = stats[1] > 0  # all the interval's D steps skipped: nothing measured, p stays
        rt = (stats[0] / stats[1].clamp(min=1)).float()
        model.ada_rt.copy_(torch.where(measured, rt, model.ada_rt))
        if self.mode == "ada":
            step = torch.sign(rt - self.config.ada_target) * (stats[2] / (self.config.ada_kimg * 1000)).float()
            model.augment_p.copy_(torch.where(measured, (model.augment_p + step).clamp(min=0), model.augment_p))
        model.ada_stats.zero_()

    def logs(self, model: Any) -> dict[str, Tensor]:
        # Copies: the buffers change in place at the next adjustment, the logged values must not.
        if self.mode == "diffaugment":
            return {"ada_rt": model.ada_rt.clone()}
        return {"ada_p": model.augment_p.clone(), "ada_rt": model.ada_rt.clone()}
