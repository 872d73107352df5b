"""Spectral normalisation (Miyato et al. 2018): every Conv/Linear weight of D divided by its largest singular value
(one power iteration per training forward), which bounds D's Lipschitz constant without a penalty or clipping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gan_lightning.nets.layers import spectral_norm_all
from gan_lightning.techniques.base import Technique


@dataclass
class SpectralNormConfig:
    spectral_norm_d: bool = False  # spectral normalisation of D's weights (Miyato et al. 2018)


class SpectralNorm(Technique):
    Config = SpectralNormConfig
    switch = "spectral_norm_d"

    def setup(self, model: Any) -> None:
        spectral_norm_all(model.discriminator)
