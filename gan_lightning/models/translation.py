"""Image-to-image models: G maps an image of one kind to another (CycleGAN, Pix2Pix, the super-resolution models).

A batch is a dict of named image tensors, the fakes are G's translations; there are no latents and no labels.
Techniques that act on D alone make sense here (spectral norm, weight clipping, historical averaging); a model adds
the ones its losses allow. Previews are rows of (input, output, ...) test images; evaluation samples are translated
test sets; ``translate`` serves ``gan-lightning translate``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from gan_lightning.models.base import AdversarialConfig, AdversarialModule
from gan_lightning.techniques import HistoricalAveraging, SpectralNorm, WeightClipping
from gan_lightning.techniques.historical_averaging import HistoricalAveragingConfig
from gan_lightning.techniques.spectral_norm import SpectralNormConfig
from gan_lightning.techniques.weight_clipping import WeightClippingConfig

# Keys every model's config held before models had families of their own: a translation checkpoint written then
# stores them (at values its model could not use), and loading it drops them.
_LATENT_KEYS_OF_OLD_CHECKPOINTS = (
    "latent_dim", "latent_prior", "latent_components", "latent_component_std", "real_label", "pack",
    "minibatch_kernels", "minibatch_kernel_dim", "feature_matching", "feature_matching_only", "virtual_batch_norm",
    "vbn_reference_size", "ema_decay", "ema_start", "gradient_penalty")


@dataclass
class ImageTranslationConfig(HistoricalAveragingConfig, WeightClippingConfig, SpectralNormConfig, AdversarialConfig):
    pass


class ImageTranslationModel(AdversarialModule):
    """Base of image-to-image models: variants build their networks, losses, previews and ``translate``."""

    Config = ImageTranslationConfig
    family = "image-to-image translation: G(image of domain A) -> image of domain B"
    techniques = (SpectralNorm, WeightClipping, HistoricalAveraging)

    @classmethod
    def from_hparams(cls, hparams: dict[str, Any]) -> ImageTranslationModel:
        hparams = dict(hparams)
        for key in ("num_classes", "label_names", "multi_label"):  # saved for every model by older versions
            hparams.pop(key, None)
        config = {k: v for k, v in hparams.pop("config").items() if k not in _LATENT_KEYS_OF_OLD_CHECKPOINTS}
        return cls(config, **hparams)

    @abc.abstractmethod
    def translate(self, images: Tensor, direction: str | None = None) -> Tensor:
        """Images in [-1, 1] -> G's translations ("AtoB" or "BtoA" where the model learned both)."""

    @property
    @abc.abstractmethod
    def translate_usage(self) -> str:
        """How to translate with this model from the command line."""
