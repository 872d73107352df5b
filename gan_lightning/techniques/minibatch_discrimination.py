"""Minibatch discrimination (Salimans et al. 2016, section 3.2): D sees how close each sample is to the others of its
batch, through B kernels of dimension C between its features and its head, so a collapsed G is easy to spot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gan_lightning.nets.layers import add_minibatch_discrimination
from gan_lightning.techniques.base import Technique


@dataclass
class MinibatchDiscriminationConfig:
    minibatch_kernels: int = 0  # B kernels; 0 = off
    minibatch_kernel_dim: int = 5  # C, the dimension of each kernel


class MinibatchDiscrimination(Technique):
    Config = MinibatchDiscriminationConfig
    switch = "minibatch_kernels"

    @classmethod
    def checks(cls, config: Any) -> list[tuple[str, bool, str]]:
        return [("minibatch_kernels", config.minibatch_kernels >= 0, "an int >= 0"),
                ("minibatch_kernel_dim", config.minibatch_kernel_dim >= 1, "an int >= 1")]

    def setup(self, model: Any) -> None:
        model.discriminator = add_minibatch_discrimination(model.discriminator, self.config.minibatch_kernels,
                                                           self.config.minibatch_kernel_dim)
