"""Conditional GAN (Mirza & Osindero 2014) on DCGAN nets: the class label goes into G and D.

G always gets a learned label embedding concatenated to z. D gets the label either the same way
(``projection: false``: the embedding is concatenated to the image as constant channels) or as a projection
(``projection: true``, Miyato & Koyama 2018): D(x, y) = head(f(x)) + <embed(y), f(x)>, with f D's last
feature map, which usually trains better than concatenation. Sample grids are class by row (row r shows
class r); ``gan-lightning sample CKPT --label 7`` draws one class.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from gan_lightning.models.dcgan import DCGAN, DCGANConfig
from gan_lightning.nets.conditioning import ProjectionDiscriminator
from gan_lightning.registry import register_model


@dataclass
class CGANConfig(DCGANConfig):
    name: str = "cgan"
    projection: bool = False  # D: label projection instead of concatenated label channels


@register_model("cgan")
class CGAN(DCGAN):
    Config = CGANConfig
    conditional = True

    def build_discriminator(self) -> nn.Module:
        if not self.config.projection:
            return super().build_discriminator()  # num_classes given: label channels concatenated
        return ProjectionDiscriminator(self.dcgan_discriminator(None), self.num_classes)

    def fixed_labels(self, n: int, nrow: int | None = None) -> Tensor | None:
        return super().fixed_labels(n, 8 if nrow is None else nrow)  # class by row in every grid
