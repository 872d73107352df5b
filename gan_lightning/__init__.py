"""gan-lightning: GAN experiments as PyTorch Lightning modules.

The models, datamodules and callbacks are importable from here (``from gan_lightning import DCGAN,
DigitsDataModule, SampleGrid``); they load on first use, so ``import gan_lightning`` alone stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> the module that defines it
_EXPORTS = {
    **dict.fromkeys(["AdversarialModule", "AdversarialConfig", "LatentGAN", "LatentGANConfig", "ImageTranslationModel",
                     "ImageTranslationConfig", "VanillaGAN", "DCGAN", "CGAN", "WGAN", "WGANGP", "SNGAN", "CycleGAN",
                     "Pix2Pix", "StyleGAN2", "CStyleGAN2"], "gan_lightning.models"),
    **dict.fromkeys(["MNISTDataModule", "DigitsDataModule", "CelebADataModule", "FolderDataModule",
                     "UnpairedDataModule", "PairedDataModule", "ToyDataModule"], "datamodules"),
    "SampleGrid": "gan_lightning.callbacks.samples",
    "ImageMetrics": "gan_lightning.callbacks.metrics",
    "Technique": "gan_lightning.techniques",
    "register_model": "gan_lightning.registry",
    "load_experiment": "gan_lightning.config",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gan_lightning' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
