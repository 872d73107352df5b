"""The 2-D mode-collapse benchmark mixtures (VEEGAN / PacGAN) as a datamodule: ``data.name: toy``.

``data.mixture: ring`` is 8 Gaussians evenly spaced on a circle of radius 1, std 0.01; ``grid`` is 25
Gaussians centred on {-4, -2, 0, 2, 4}^2, std 0.05 (the values of Lin et al. 2018, from
``datamodules.toy_data``). ``data.n`` points are drawn once from ``run.seed`` and served in shuffled
full-size batches; points are used as they are (no scaling), so samples, metrics and plots share units.

The datamodule also exposes ``mode_centres`` and ``mode_std``: ``gan_lightning.train.build_callbacks`` attaches
the mode metrics callback (``gan_lightning.callbacks.modes``) whenever the datamodule has them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import DictConfig
from torch import Tensor

from datamodules.base import DataConfig, InMemoryDataModule
from datamodules.toy_data import TOY_MIXTURES, sample_mixture
from gan_lightning.errors import check_values
from gan_lightning.registry import register_datamodule


@dataclass
class ToyConfig(DataConfig):
    name: str = "toy"
    mixture: str = "ring"  # ring (8 modes, std 0.01) | grid (25 modes, std 0.05)
    n: int = 100_000  # points drawn once (from run.seed)
    batch_size: int = 512
    eval_every_n_steps: int = 500  # training batches between two mode-metric evaluations (and one at the end)
    eval_samples: int = 2500  # generated points per evaluation (2,500 as in VEEGAN/PacGAN)


@register_datamodule("toy")
class ToyDataModule(InMemoryDataModule):
    Config = ToyConfig

    @classmethod
    def check_config(cls, config: DictConfig) -> None:
        super().check_config(config)
        check_values("data", config, [("mixture", config.mixture in TOY_MIXTURES, ", ".join(TOY_MIXTURES)),
                                      *((key, config[key] >= 1, "an int >= 1")
                                        for key in ("n", "eval_every_n_steps", "eval_samples"))])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (2,)

    @property
    def dataset_id(self) -> str:
        return f"toy-{self.config.mixture}"

    @property
    def mode_centres(self) -> Tensor:
        return TOY_MIXTURES[self.config.mixture][0]()

    @property
    def mode_std(self) -> float:
        return TOY_MIXTURES[self.config.mixture][1]

    def load(self) -> tuple[Tensor, None]:
        generator = torch.Generator().manual_seed(self.seed)
        points, _ = sample_mixture(self.mode_centres, self.mode_std, self.config.n, generator)
        return points, None

    def batch_transform(self, samples: Tensor) -> Tensor:
        return samples  # already float points in data space
