"""SNGAN (Miyato et al. 2018): hinge loss and a spectrally normalised discriminator.

What differs from DCGAN: loss hinge; every Conv/Linear weight of D divided by its largest singular value
(one power iteration per step), which bounds D's Lipschitz constant without a penalty or clipping; no
normalisation layers in D; Adam(2e-4, 0.5, 0.999) with one D step per G step (the paper's setting for
the standard CNN).
"""

from __future__ import annotations

from dataclasses import dataclass

from gan_lightning.models.dcgan import DCGAN, DCGANConfig
from gan_lightning.registry import register_model


@dataclass
class SNGANConfig(DCGANConfig):
    name: str = "sngan"
    loss: str = "hinge"
    spectral_norm_d: bool = True
    d_norm: str = "none"


@register_model("sngan")
class SNGAN(DCGAN):
    Config = SNGANConfig
