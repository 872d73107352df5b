"""GAN variants as LightningModules. Importing this package registers every variant by name."""

from gan_lightning.models.base import AdversarialConfig, AdversarialModule, Preview
from gan_lightning.models.cgan import CGAN
from gan_lightning.models.cyclegan import CycleGAN
from gan_lightning.models.dcgan import DCGAN
from gan_lightning.models.esrgan import ESRGAN
from gan_lightning.models.gan import VanillaGAN
from gan_lightning.models.latent import LatentBatch, LatentGAN, LatentGANConfig
from gan_lightning.models.pix2pix import Pix2Pix
from gan_lightning.models.sngan import SNGAN
from gan_lightning.models.srgan import SRGAN
from gan_lightning.models.srresnet import SRResNetModel
from gan_lightning.models.stylegan2 import CStyleGAN2, StyleGAN2
from gan_lightning.models.superres import SuperResolutionGAN, SuperResolutionModel
from gan_lightning.models.translation import ImageTranslationConfig, ImageTranslationModel
from gan_lightning.models.wgan import WGAN
from gan_lightning.models.wgan_gp import WGANGP

__all__ = ["CGAN", "DCGAN", "ESRGAN", "SNGAN", "SRGAN", "WGAN", "WGANGP", "AdversarialConfig", "AdversarialModule",
           "CStyleGAN2", "CycleGAN", "ImageTranslationConfig", "ImageTranslationModel", "LatentBatch", "LatentGAN",
           "LatentGANConfig", "Pix2Pix", "Preview", "SRResNetModel", "StyleGAN2", "SuperResolutionGAN",
           "SuperResolutionModel", "VanillaGAN"]
