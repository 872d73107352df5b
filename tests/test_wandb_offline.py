"""The W&B logger, offline: run files in run.dir/wandb, sample grids handed over as images, no server."""

from __future__ import annotations

from pathlib import Path

import pytest

from gan_lightning.cli import main
from tests.conftest import tiny_overrides


def test_wandb_offline_run_receives_metrics_and_sample_grids(fake_mnist: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    run = tmp_path / "run"
    assert main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, run, 4), "logger.wandb.enabled=true",
                 "logger.wandb.mode=offline", "logger.wandb.tags=[smoke]"]) == 0
    (offline,) = (run / "wandb").glob("offline-run-*")
    images = sorted(p.name for p in (offline / "files" / "media" / "images").iterdir())
    assert len(images) == 2 and all(name.startswith("samples_") and name.endswith(".png") for name in images)
    assert (offline / f"run-{offline.name.rsplit('-', 1)[1]}.wandb").stat().st_size > 0
    assert (run / "metrics.csv").is_file()  # the CSV record is kept alongside W&B
