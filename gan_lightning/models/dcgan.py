"""Radford et al. 2015: the DCGAN architecture and its Adam(2e-4, 0.5, 0.999) recipe."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig
from torch import nn

from gan_lightning.models.latent import LatentGAN, LatentGANConfig
from gan_lightning.nets.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_init_
from gan_lightning.registry import register_model


@dataclass
class DCGANConfig(LatentGANConfig):
    name: str = "dcgan"
    width_g: int = 64  # channels of G's last hidden layer (doubling towards the latent)
    width_d: int = 64  # channels of D's first layer (doubling towards the output)
    d_norm: str = "batch"  # batch | layer | none


@register_model("dcgan")
class DCGAN(LatentGAN):
    Config = DCGANConfig

    def build_generator(self) -> nn.Module:
        channels, size = self.sample_shape[0], self.sample_shape[-1]
        net = DCGANGenerator(self.config.latent_dim, channels, size, self.config.width_g, self.num_classes)
        dcgan_init_(net)
        return net

    def build_discriminator(self) -> nn.Module:
        return self.dcgan_discriminator(self.num_classes)

    def dcgan_discriminator(self, num_classes: int | None) -> nn.Module:
        """The DCGAN D, initialised; ``num_classes``: label channels concatenated to the image (None: none)."""
        channels, size = self.d_input_shape[0], self.d_input_shape[-1]  # m * C channels with packing
        net = DCGANDiscriminator(channels, size, self.config.width_d, self.config.d_norm, num_classes)
        dcgan_init_(net)
        return net

    @classmethod
    def config_checks(cls, config: DictConfig) -> list[tuple[str, bool, str]]:
        return [*super().config_checks(config),
                ("d_norm", config.d_norm in ("batch", "layer", "none"), "batch, layer, none"),
                ("width_g", config.width_g >= 1, "an int >= 1"),
                ("width_d", config.width_d >= 1, "an int >= 1")]
