"""StyleGAN2 (Karras et al. 2020) as a latent GAN: ``stylegan2`` (unconditional) and ``cstylegan2`` (class labels
into the mapping network and a projection discriminator).

The recipe of stylegan2-ada-pytorch's paper configuration, on ``gan_lightning.nets.stylegan2``: the non-saturating
logistic loss; Adam(0.0025, betas 0/0.99) for both players; lazy R1 on D every 16 batches (``techniques.r1``) and
lazy path length regularisation on G every 4 (``techniques.path_length``), each folded into that batch's loss with
its interval as a factor, and each optimizer's lr and betas adjusted for its interval as the reference does
(lr * k/(k+1), beta ** (k/(k+1)), k the interval); style mixing with probability 0.9; w_avg (EMA 0.995) for the
truncation trick; an EMA copy of G for samples and metrics (``ema_decay``).

The resolution is the data's (a power of two >= 8: resize 28x28 digits with ``data.image_size: 32``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig
from torch import Tensor, nn

from gan_lightning.models.base import AdversarialConfig
from gan_lightning.models.latent import LatentGAN
from gan_lightning.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from gan_lightning.registry import register_model
from gan_lightning.techniques import EMA, Augmentation, LatentPrior
from gan_lightning.techniques.augmentation import AugmentationConfig
from gan_lightning.techniques.ema import EMAConfig
from gan_lightning.techniques.latent_prior import LatentPriorConfig
from gan_lightning.techniques.path_length import PathLength, PathLengthConfig
from gan_lightning.techniques.r1 import R1, R1Config


# Bases in reverse: a dataclass lists the fields of its last base first, so the game's keys lead.
@dataclass
class StyleGAN2Config(AugmentationConfig, EMAConfig, PathLengthConfig, R1Config, LatentPriorConfig, AdversarialConfig):
    name: str = "stylegan2"
    loss: str = "non_saturating"  # the reference's logistic loss: softplus(-D(x)) + softplus(D(G(z))), -> G
    lr_g: float = 0.0025
    lr_d: float = 0.0025
    beta1: float = 0.0
    beta2: float = 0.99
    latent_dim: int = 512  # z
    w_dim: int = 512
    channel_base: int = 32768  # channels at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 512
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    style_mixing: float = 0.9  # probability that a training forward mixes two zs' ws
    r1_gamma: float | None = None  # null: 0.0002 * resolution^2 / 32 (the reference heuristic at batch 32)
    pl_weight: float = 2.0
    # The reference averages G over ema_kimg = 10 thousand images (batch 32 in the paper configuration):
    # decay per batch = 0.5 ** (batch / (ema_kimg * 1000)) = 0.5 ** (32 / 10000) = 0.99778. Other batch sizes: same
    # formula.
    ema_decay: float | None = 0.99778


@register_model("stylegan2")
class StyleGAN2(LatentGAN):
    Config = StyleGAN2Config
    techniques = (LatentPrior, R1, PathLength, EMA, Augmentation)  # EMA after the updates: it averages the stepped G

    @classmethod
    def config_checks(cls, config: DictConfig) -> list[tuple[str, bool, str]]:
        return [*super().config_checks(config),
                ("w_dim", config.w_dim >= 1, "an int >= 1"),
                ("channel_base", config.channel_base >= 1, "an int >= 1"),
                ("channel_max", config.channel_max >= 1, "an int >= 1"),
                ("mapping_layers", config.mapping_layers >= 1, "an int >= 1"),
                ("mapping_lr_multiplier", config.mapping_lr_multiplier > 0, "a float > 0"),
                ("style_mixing", 0.0 <= config.style_mixing <= 1.0, "a float in [0, 1]")]

    def build_generator(self) -> nn.Module:
        c = self.config
        channels, size = self.sample_shape[0], self.sample_shape[-1]
        return StyleGAN2Generator(c.latent_dim, c.w_dim, size, channels, c.channel_base, c.channel_max,
                                  c.mapping_layers, self.num_classes, c.style_mixing, c.mapping_lr_multiplier)

    def build_discriminator(self) -> nn.Module:
        c = self.config
        return StyleGAN2Discriminator(self.d_input_shape[0], self.d_input_shape[-1], c.channel_base, c.channel_max,
                                      self.num_classes)

    def regularization_intervals(self) -> tuple[int | None, int | None]:
        """(D's, G's) lazy regularisation interval, None where that regulariser is off."""
        r1, pl = self.technique(R1), self.technique(PathLength)
        return (self.config.r1_interval if r1 is not None else None,
                self.config.pl_interval if pl is not None else None)

    def build_optimizers(self, max_steps: int, max_epochs: int | None = None) -> Any:
        """The base's optimizers with the reference's lazy-regularisation adjustment: a player regularised every k
        batches gets lr * k/(k+1) and betas ** (k/(k+1)), as if its k main steps and one regulariser step were
        k + 1 steps of the same optimizer."""
        built = super().build_optimizers(max_steps, max_epochs)
        optimizers = built[0] if isinstance(built, tuple) else built
        for optimizer, interval in zip(optimizers, self.regularization_intervals(), strict=True):  # D first, then G
            if interval is None:
                continue
            ratio = interval / (interval + 1)
            for group in optimizer.param_groups:
                group["lr"] *= ratio
                if "initial_lr" in group:  # a scheduler scales initial_lr: adjust it too
                    group["initial_lr"] *= ratio
                if "betas" in group:
                    group["betas"] = tuple(beta**ratio for beta in group["betas"])
        if isinstance(built, tuple):  # LR schedulers scale the base lrs they read at construction
            for scheduler in built[1]:
                scheduler.base_lrs = [group["initial_lr"] for group in scheduler.optimizer.param_groups]
        return built

    def eval_samples(self, n: int, batch_size: int, seed: int, datamodule: Any = None,
                     shard: tuple[int, int] = (0, 1)) -> Iterator[Tensor]:
        """As LatentGAN's, clamped to [-1, 1]: G's output is linear, and the reference's metrics also see its
        images clamped (quantised to uint8)."""
        for images in super().eval_samples(n, batch_size, seed, datamodule, shard):
            yield images.clamp(-1.0, 1.0)


@register_model("cstylegan2")
class CStyleGAN2(StyleGAN2):
    """Class-conditional StyleGAN2: a label embedding concatenated to z in the mapping network, and a projection
    discriminator. Grids are class by row."""

    conditional = True

    def fixed_labels(self, n: int, nrow: int | None = None) -> Tensor | None:
        return super().fixed_labels(n, 8 if nrow is None else nrow)
