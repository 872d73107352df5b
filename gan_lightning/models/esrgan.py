"""ESRGAN (Wang et al. 2018): the RRDB generator (23 residual-in-residual dense blocks, growth 32, residual scaling
0.2, no batch norm, nearest + conv upsampling) against a relativistic average discriminator.

G's loss: L1 on VGG19 conv5_4 features taken before the activation (weight 1) + 5e-3 x the relativistic GAN loss
+ 1e-2 x pixel L1. Adam(1e-4, 0.9, 0.99), the lr halved at 50k, 100k, 200k and 300k updates; 128 px HR crops, batch
16. G starts from the PSNR-oriented RRDBNet (``srresnet`` with ``model.generator=rrdb``, ``model.init_from``), and
``gan-lightning interpolate`` blends the two (network interpolation, alpha 0.8 in the paper). The discriminator is
the SRGAN one (ESRGAN's is the same VGG-style stack, five stride-2 stages for 128 px crops instead of four).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gan_lightning.models.superres import SuperResGANConfig, SuperResolutionGAN
from gan_lightning.registry import register_model


@dataclass
class ESRGANConfig(SuperResGANConfig):
    name: str = "esrgan"
    generator: str = "rrdb"
    n_blocks: int = 23
    relativistic: bool = True
    perceptual_layer: str | None = "conv5_4"
    perceptual_criterion: str = "l1"
    perceptual_weight: float = 1.0
    adversarial_weight: float = 5e-3
    pixel_criterion: str = "l1"
    pixel_weight: float = 1e-2
    beta2: float = 0.99
    lr_milestones: list[int] = field(default_factory=lambda: [50_000, 100_000, 200_000, 300_000])
    lr_gamma: float = 0.5


@register_model("esrgan")
class ESRGAN(SuperResolutionGAN):
    Config = ESRGANConfig
