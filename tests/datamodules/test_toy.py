"""The toy 2-D mixture datamodule (data.name: toy)."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from datamodules.toy import ToyConfig, ToyDataModule
from datamodules.toy_data import grid_modes, ring_modes
from gan_lightning.errors import ConfigError
from gan_lightning.metrics.modes import mode_stats


def make(seed: int = 0, **kwargs) -> ToyDataModule:
    return ToyDataModule(OmegaConf.structured(ToyConfig(**kwargs)), seed=seed)


@pytest.mark.parametrize("mixture, modes, std", [("ring", ring_modes(), 0.01), ("grid", grid_modes(), 0.05)])
def test_points_come_from_the_mixture(mixture: str, modes: torch.Tensor, std: float) -> None:
    dm = make(mixture=mixture, n=5000, batch_size=100)
    assert dm.sample_shape == (2,) and dm.num_classes is None and dm.mode_std == std
    torch.testing.assert_close(dm.mode_centres, modes)
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, tuple) and batch[0].shape == (100, 2) and batch[0].dtype == torch.float32
    stats = mode_stats(dm.real_samples(5000), modes, std)
    # a 3-std disc holds 1 - exp(-9/2) = 98.9% of a 2-D Gaussian: real data is not 100% "high quality"
    assert stats.modes_captured == len(modes) and stats.high_quality_pct > 98.0
    assert torch.equal(make(mixture=mixture, n=50).real_samples(50), make(mixture=mixture, n=50).real_samples(50))
    assert not torch.equal(make(1, mixture=mixture, n=50).real_samples(50), dm.real_samples(50))


def test_bad_mixture_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="data.mixture"):
        ToyDataModule.check_config(OmegaConf.structured(ToyConfig(mixture="spiral")))
    with pytest.raises(ConfigError, match="data.eval_samples"):
        ToyDataModule.check_config(OmegaConf.structured(ToyConfig(eval_samples=0)))
