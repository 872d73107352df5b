"""PacGAN (Lin et al. 2018): D judges m samples at once, which penalises a G that covers few modes.

Real and fake batches are packed separately ((N, C, ...) -> (N/m, m*C, ...)); D is built for m * C input channels
and gives one score per pack. For unconditional models; the batch size must be a multiple of m.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from gan_lightning.errors import ConfigError
from gan_lightning.nets.layers import pack_samples
from gan_lightning.techniques.base import Technique


@dataclass
class PackingConfig:
    pack: int = 1  # samples per D input (1: off)


class Packing(Technique):
    Config = PackingConfig
    switch = "pack"

    @classmethod
    def checks(cls, config: Any) -> list[tuple[str, bool, str]]:
        return [("pack", config.pack >= 1, "an int >= 1")]

    @classmethod
    def check(cls, config: Any, model_cls: type) -> None:
        if model_cls.conditional:
            raise ConfigError(f"model.pack: packing is for unconditional models; {model_cls.registry_name} is "
                              "conditional")

    def check_data(self, model: Any, datamodule: Any) -> None:
        if datamodule.batch_size % self.config.pack:
            raise ConfigError(f"model.pack: {self.config.pack} does not divide data.batch_size="
                              f"{datamodule.batch_size}")

    def d_input_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (shape[0] * self.config.pack, *shape[1:])

    def d_input(self, x: Tensor) -> Tensor:
        return pack_samples(x, self.config.pack)
