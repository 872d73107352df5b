"""The StyleGAN2 recipes beyond stylegan2_digits: each trains a few batches from the CLI on fake data the test makes
(tiny widths and sizes), and their settings are the reference configurations they claim (stylegan2-ada-pytorch's
`paper256` for stylegan2_ffhq, its `auto` rules for stylegan2_celeba and stylegan2_ada_folder)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gan_lightning.checkpoints import load_checkpoint
from gan_lightning.cli import main
from gan_lightning.config import EXPERIMENTS_DIR
from gan_lightning.loading import load_model
from gan_lightning.techniques.r1 import r1_gamma
from tests.conftest import write_fake_mnist
from tests.datamodules.test_folder import write_images

TINY_NETS = ["model.latent_dim=8", "model.w_dim=8", "model.channel_base=64", "model.channel_max=8",
             "model.mapping_layers=1"]


def fake_data(experiment: str, root: Path) -> list[str]:
    """Overrides pointing the experiment at a small fake dataset written under ``root`` (16 px)."""
    name = OmegaConf.load(EXPERIMENTS_DIR / f"{experiment}.yaml").data.name
    if name == "mnist":
        write_fake_mnist(root)
        return [f"data.root={root}", "data.download=false", "data.limit=64", "data.image_size=16"]
    if name == "celeba":
        from datamodules.celeba import write_fake_celeba

        write_fake_celeba(root, n=12)
        return [f"data.root={root}", "data.download=false", "data.image_size=16", f"data.cache_dir={root / 'cache'}"]
    assert name == "folder", name
    write_images(root / "images", list(range(10, 250, 20)), size=(20, 14))
    return [f"data.root={root / 'images'}", "data.image_size=16", f"data.cache_dir={root / 'cache'}"]


def train_tiny(experiment: str, tmp_path: Path, steps: int = 4, extra: tuple[str, ...] = ()) -> Path:
    run = tmp_path / "run"
    assert main(["train", experiment, *fake_data(experiment, tmp_path / "data"), *TINY_NETS, "data.batch_size=4",
                 f"trainer.max_steps={steps}", "trainer.accelerator=cpu", f"run.dir={run}", "run.quiet=true",
                 "trainer.log_every_n_steps=1", "callbacks.samples.every_n_steps=1000", "callbacks.samples.n=8",
                 "callbacks.checkpoint.every_n_steps=1000", "callbacks.metrics.enabled=false", *extra]) == 0
    return run


def logged(run: Path, key: str) -> list[str]:
    return [row[key] for row in csv.DictReader((run / "metrics.csv").read_text().splitlines()) if row.get(key)]


@pytest.mark.parametrize("experiment", ["stylegan2_mnist", "stylegan2_celeba", "stylegan2_ffhq",
                                        "stylegan2_ada_folder"])
def test_recipe_trains_with_its_regularisers(experiment: str, tmp_path: Path, one_torch_thread) -> None:
    run = train_tiny(experiment, tmp_path)
    checkpoint = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 4 and checkpoint["hyper_parameters"]["sample_shape"][1:] == [16, 16]
    recipe = OmegaConf.load(EXPERIMENTS_DIR / f"{experiment}.yaml").model
    # Lazy R1 on batch 0 only (every 16); path length on G updates 0 and 4, i.e. batch 0 of these 4, where it is on.
    assert len(logged(run, "train/r1")) == 1 and len(logged(run, "train/d_loss")) == 4
    assert len(logged(run, "train/pl")) == (1 if recipe.pl_weight > 0 else 0)
    state = checkpoint["state_dict"]
    assert ("pl_mean" in state) == (recipe.pl_weight > 0)
    if recipe.get("augment", "none") == "ada":
        assert len(logged(run, "train/ada_p")) == 4 and "augment_p" in state


def test_ffhq_is_the_reference_paper256_config() -> None:
    model, data = (OmegaConf.load(EXPERIMENTS_DIR / "stylegan2_ffhq.yaml")[key] for key in ("model", "data"))
    batch, resolution = data.batch_size, data.image_size
    # paper256: mb 64, mbstd 8, fmaps 0.5 (channel_base 0.5 * 32768), lrate 0.0025, gamma 1, ema 20 kimg, map 8.
    assert (batch, resolution, model.mbstd_group, model.channel_base, model.channel_max) == (64, 256, 8, 16384, 512)
    assert (model.lr_g, model.lr_d, model.r1_gamma, model.mapping_layers) == (0.0025, 0.0025, 1.0, 8)
    assert model.ema_decay == pytest.approx(0.5 ** (batch / 20_000), abs=5e-6) and model.ema_rampup is None
    assert (model.style_mixing, model.pl_weight, model.r1_interval, model.pl_interval) == (0.9, 2.0, 16, 4)
    assert OmegaConf.load(EXPERIMENTS_DIR / "stylegan2_ffhq.yaml").trainer.max_steps * batch == 25_000_000


@pytest.mark.parametrize("experiment", ["stylegan2_celeba", "stylegan2_ada_folder"])
def test_auto_rules_give_the_recipe(experiment: str) -> None:
    """stylegan2-ada-pytorch's `auto` on one GPU at resolution r: batch min(4096 // r, 32), gamma 0.0002 r^2 / batch,
    ema_kimg batch * 10 / 32 (a per-batch decay of 0.5 ** (32 / 10000) whatever the batch), 2 mapping layers."""
    experiment_config = OmegaConf.load(EXPERIMENTS_DIR / f"{experiment}.yaml")
    model, data = experiment_config.model, experiment_config.data
    r = data.image_size
    batch = min(4096 // r, 32)
    assert data.batch_size == batch and model.channel_base == 16384 and model.mapping_layers == 2
    assert r1_gamma(model, r) == pytest.approx(0.0002 * r**2 / batch)
    assert model.ema_decay == pytest.approx(0.5 ** (batch / (batch * 10 / 32 * 1000)), abs=5e-6)
    assert model.ema_rampup == 0.05 and model.lr_g == model.lr_d == 0.0025


def test_ffhq_discriminator_uses_groups_of_eight(tmp_path: Path, one_torch_thread) -> None:
    run = train_tiny("stylegan2_ffhq", tmp_path, steps=1, extra=("data.batch_size=8",))
    model = load_model(run / "checkpoints" / "last.ckpt")
    assert model.discriminator.mbstd_group == 8
    assert main(["train", "stylegan2_ffhq", "model.mbstd_group=0", "--dry-run"]) == 2


def test_mbstd_channels_must_divide_the_4x4_width(capsys) -> None:
    # stylegan2_digits: min(256 // 4, 32) = 32 channels at 4x4
    assert main(["train", "stylegan2_digits", "model.mbstd_channels=5", "--dry-run"]) == 2
    assert "model.mbstd_channels: 5; accepted: an int >= 1 that divides" in capsys.readouterr().err
    assert main(["train", "stylegan2_digits", "model.mbstd_channels=4", "--dry-run"]) == 0
