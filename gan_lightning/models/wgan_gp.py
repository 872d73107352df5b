"""WGAN-GP (Gulrajani et al. 2017): the Wasserstein critic made 1-Lipschitz by a gradient penalty.

What differs from DCGAN: loss wasserstein; lambda * (||grad C(x_hat)||_2 - 1)^2 at random interpolates
x_hat = eps x + (1 - eps) G(z) (lambda = 10; ``gan_lightning.losses.gradient_penalty`` works for any channel
count and image size); n_critic = 5; Adam(1e-4, betas 0/0.9 as in the paper's Algorithm 1; 0.5/0.9 is the
other published setting); no batchnorm in the critic (the penalty is per sample; layer norm instead).
The base refuses a gradient penalty on a critic with batchnorm.
"""

from __future__ import annotations

from dataclasses import dataclass

from gan_lightning.models.dcgan import DCGAN, DCGANConfig
from gan_lightning.registry import register_model


@dataclass
class WGANGPConfig(DCGANConfig):
    name: str = "wgan_gp"
    loss: str = "wasserstein"
    gradient_penalty: float = 10.0
    n_critic: int = 5
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.9
    d_norm: str = "layer"


@register_model("wgan_gp")
class WGANGP(DCGAN):
    Config = WGANGPConfig
