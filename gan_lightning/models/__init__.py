"""GAN variants as LightningModules. Importing this package registers every variant by name."""

from gan_lightning.models.base import GANConfig, GANModule
from gan_lightning.models.dcgan import DCGAN
from gan_lightning.models.gan import VanillaGAN

__all__ = ["DCGAN", "GANConfig", "GANModule", "VanillaGAN"]
