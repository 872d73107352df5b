"""WGAN (Arjovsky et al. 2017): a real-valued critic kept Lipschitz by weight clipping.

What differs from DCGAN is only the recipe: loss wasserstein (L_C = mean C(G(z)) - mean C(x),
L_G = -mean C(G(z))), every critic weight clamped to [-c, c] after each critic step (c = 0.01),
RMSprop(5e-5) (the paper found momentum methods unstable with clipping), n_critic = 5.
"""

from __future__ import annotations

from dataclasses import dataclass

from gan_lightning.models.dcgan import DCGAN, DCGANConfig
from gan_lightning.registry import register_model


@dataclass
class WGANConfig(DCGANConfig):
    name: str = "wgan"
    loss: str = "wasserstein"
    weight_clip: float | None = 0.01
    optimizer: str = "rmsprop"
    lr_g: float = 5e-5
    lr_d: float = 5e-5
    n_critic: int = 5


@register_model("wgan")
class WGAN(DCGAN):
    Config = WGANConfig
