"""Goodfellow et al. 2014: MLP generator and discriminator (also the 2-D toy-data baseline)."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import DictConfig
from torch import nn

from gan_lightning.models.latent import LatentGAN, LatentGANConfig
from gan_lightning.nets.mlp import MLP_NORMS, MLPDiscriminator, MLPGenerator
from gan_lightning.registry import register_model


@dataclass
class VanillaGANConfig(LatentGANConfig):
    name: str = "gan"
    hidden_g: list[int] = field(default_factory=lambda: [256, 512])  # units of G's hidden layers, in order
    hidden_d: list[int] = field(default_factory=lambda: [512, 256])  # units of D's hidden layers, in order
    dropout_d: float = 0.0  # dropout probability after each of D's hidden layers
    norm_g: str = "none"  # none | batch (batch norm in G's hidden layers; model.virtual_batch_norm makes it VBN)


@register_model("gan")
class VanillaGAN(LatentGAN):
    Config = VanillaGANConfig

    def build_generator(self) -> nn.Module:
        images = len(self.sample_shape) == 3  # images are Tanh-bounded; toy points are not
        return MLPGenerator(self.config.latent_dim, self.sample_shape, self.config.hidden_g, self.num_classes,
                            tanh_output=images, norm=self.config.norm_g)

    def build_discriminator(self) -> nn.Module:
        return MLPDiscriminator(self.d_input_shape, self.config.hidden_d, self.num_classes,
                                dropout=self.config.dropout_d)

    @classmethod
    def config_checks(cls, config: DictConfig) -> list[tuple[str, bool, str]]:
        return [*super().config_checks(config), ("norm_g", config.norm_g in MLP_NORMS, ", ".join(MLP_NORMS)),
                ("hidden_g", all(width >= 1 for width in config.hidden_g), "a list of ints >= 1"),
                ("hidden_d", all(width >= 1 for width in config.hidden_d), "a list of ints >= 1")]
