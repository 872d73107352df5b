"""SRGAN (Ledig et al. 2017): SRResNet's G, initialised from the pre-trained MSE model (``model.init_from``),
against the 8-conv discriminator.

G's loss: content loss on VGG19 relu5_4 features (MSE, rescaled by 1/12.75) + 1e-3 x the non-saturating GAN loss
(+ an optional pixel term, ``model.pixel_weight``). Adam(1e-4, beta1 0.9) for both players, the lr stepped to 1e-5
half-way (the paper: 10^5 updates at 1e-4, 10^5 at 1e-5; ``model.lr_milestones``). 96 px HR crops, batch 16.
"""

from __future__ import annotations

from dataclasses import dataclass

from gan_lightning.models.superres import SuperResGANConfig, SuperResolutionGAN
from gan_lightning.registry import register_model


@dataclass
class SRGANConfig(SuperResGANConfig):
    name: str = "srgan"


@register_model("srgan")
class SRGAN(SuperResolutionGAN):
    Config = SRGANConfig
