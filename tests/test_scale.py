"""Scale: DDP over 2 CPU processes (gloo) for the DCGAN and WGAN-GP recipes, metrics computed once under DDP."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan_lightning.cli import main
from tests.conftest import assert_same_state, tiny_overrides

TWO_CPU_RANKS = ["trainer.accelerator=cpu", "trainer.devices=2"]


def train_two_ranks(experiment: str, data_root: Path, run_dir: Path, steps: int, *extra: str) -> dict:
    args = [sys.executable, "-m", "gan_lightning", "train", experiment, *tiny_overrides(data_root, run_dir, steps),
            *TWO_CPU_RANKS, *extra]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


@pytest.mark.parametrize("experiment", ["dcgan_mnist", "wgan_gp_mnist"])
def test_two_rank_resume_is_exact_and_ranks_stay_in_sync(fake_mnist: Path, tmp_path: Path, experiment: str) -> None:
    # Lightning picks DDP itself for trainer.devices=2 with no strategy: alternating updates must work there too.
    straight = train_two_ranks(experiment, fake_mnist, tmp_path / "straight", 6)
    assert straight["global_step"] == 6 and int(straight["state_dict"]["batches_seen"]) == 6
    digests = straight["weights_digest_per_rank"]
    assert len(digests) == 2 and digests[0] == digests[1]  # every rank holds the weights rank 0 saved
    ranks = straight["rng_states_per_rank"]
    assert len(ranks) == 2 and not torch.equal(ranks[0]["torch"], ranks[1]["torch"])  # per-rank latent streams
    train_two_ranks(experiment, fake_mnist, tmp_path / "split", 3, "trainer.strategy=ddp")
    resumed = train_two_ranks(experiment, fake_mnist, tmp_path / "split", 6, "trainer.strategy=ddp", "--resume")
    assert_same_state(straight, resumed)
    assert sorted(p.name for p in (tmp_path / "straight" / "checkpoints").iterdir()) == ["last.ckpt"]


def test_ddp_metrics_are_computed_once_and_equal_single_process(fake_mnist: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    run, cache = tmp_path / "run", tmp_path / "cache"
    # 40 samples in 4 batches of 10: ranks 0 and 1 generate two each; rank 0 scores all 40.
    settings = ["callbacks.metrics.n_samples=40", "callbacks.metrics.n_real=48", "callbacks.metrics.batch_size=10",
                f"callbacks.metrics.cache_dir={cache}"]
    train_two_ranks("dcgan_mnist", fake_mnist, run, 4, "callbacks.metrics.enabled=true",
                    "callbacks.metrics.every_n_steps=4", *settings)
    rows = [r for r in csv.DictReader((run / "metrics.csv").read_text().splitlines()) if r.get("val/fid")]
    assert len(rows) == 1  # logged once, by rank 0
    during = json.loads((run / "metrics" / "step_0000004.json").read_text())
    assert during["n_samples"] == 40 and sum(during["class_histogram"]) == 40
    # The same checkpoint scored by one process: the same 40 samples, the same numbers.
    assert main(["evaluate", str(run / "checkpoints" / "last.ckpt"), "--n", "40", "--n-real", "48",
                 "--batch-size", "10", "--cache-dir", str(cache)]) == 0
    alone = json.loads(capsys.readouterr().out)
    for key in ("fid", "is", "kid"):
        assert during[key] == pytest.approx(alone[key], rel=1e-9, abs=1e-12), key
    assert during["class_histogram"] == alone["class_histogram"]
