"""The Python API: models, datamodules and callbacks from ``gan_lightning``, built from keywords or a config, trained
by a user's own Trainer, and back from a checkpoint; models from other packages through entry points."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

import gan_lightning
from gan_lightning import registry
from gan_lightning.errors import ConfigError


def test_everything_named_in_the_package_imports_and_the_package_alone_stays_light() -> None:
    for name in gan_lightning.__all__:
        assert getattr(gan_lightning, name) is not None, name
    code = "import sys, gan_lightning; print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_models_take_keywords_and_check_them_in_one_line() -> None:
    from gan_lightning import DCGAN, WGANGP

    model = WGANGP(latent_dim=8, width_g=4, width_d=4, image_shape=(1, 28, 28))
    assert model.config.gradient_penalty == 10.0 and model.config.n_critic == 5  # the recipe's defaults
    assert model.config.latent_dim == 8 and model.sample_shape == (1, 28, 28)
    with pytest.raises(ConfigError, match=r"^model.latent_dim: 0; accepted: an int >= 1$"):
        DCGAN(latent_dim=0, sample_shape=(1, 28, 28))
    with pytest.raises(ConfigError, match=r"^model.wdith_g: unknown key; accepted: name, loss, "):
        DCGAN(wdith_g=4, sample_shape=(1, 28, 28))
    with pytest.raises(ConfigError, match="give the shape of a sample"):
        DCGAN(latent_dim=8)


def test_from_config_builds_what_the_cli_builds(fake_mnist: Path) -> None:
    from gan_lightning import DCGAN, MNISTDataModule, load_experiment
    from gan_lightning.train import build_datamodule, build_model

    config = load_experiment("dcgan_mnist", [f"data.root={fake_mnist}", "data.download=false", "model.width_g=4"])
    torch.manual_seed(0)
    mine = DCGAN.from_config(config, MNISTDataModule(config.data))
    torch.manual_seed(0)
    cli = build_model(config, build_datamodule(config))
    assert mine.hparams["config"] == cli.hparams["config"] and mine.config.lr_g == 6e-4
    for a, b in zip(mine.state_dict().values(), cli.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_a_users_trainer_with_the_callbacks_and_load_from_checkpoint(tmp_path: Path) -> None:
    from gan_lightning import DCGAN, DigitsDataModule, ImageMetrics, SampleGrid

    torch.manual_seed(0)
    model = DCGAN(latent_dim=8, width_g=4, width_d=4, sample_shape=(1, 28, 28), ema_decay=0.5)
    data = DigitsDataModule(batch_size=16, limit=64)
    metrics = ImageMetrics(tmp_path / "run", every_n_steps=3, metrics="fid", n_samples=32, n_real=64,
                           batch_size=32, cache_dir=str(tmp_path / "cache"))
    trainer = L.Trainer(max_steps=3, accelerator="cpu", logger=L.pytorch.loggers.CSVLogger(tmp_path / "logs"),
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        log_every_n_steps=1, callbacks=[SampleGrid(tmp_path / "grids", every_n_steps=3, n=8), metrics])
    trainer.fit(model, data)
    assert trainer.global_step == 3 and int(model.batches_seen) == 3  # batches, not optimizer steps
    assert sorted(p.name for p in (tmp_path / "grids").iterdir()) == ["step_0000003.png"]
    scores = json.loads((tmp_path / "run" / "metrics" / "step_0000003.json").read_text())
    assert scores["step"] == 3 and scores["fid"] > 0
    logged = (next((tmp_path / "logs").rglob("metrics.csv"))).read_text().splitlines()[0].split(",")
    assert {"train/d_loss", "train/g_loss", "train/skipped_steps", "val/fid"} <= set(logged)

    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    again = DCGAN.load_from_checkpoint(path, weights_only=True)
    z = torch.randn(4, 8)
    assert again.config == model.config and torch.equal(again.generate(z), model.generate(z))
    assert int(again.batches_seen) == 3 and again.generator_ema is not None


def test_translation_models_from_keywords_round_trip(tmp_path: Path) -> None:
    from gan_lightning import CycleGAN, Pix2Pix

    for model in (CycleGAN(width_g=4, width_d=4, n_blocks=1, d_layers=2, sample_shape=(3, 16, 16)),
                  Pix2Pix(width_g=4, width_d=4, d_layers=1, sample_shape=(3, 16, 16), direction="BtoA")):
        path = tmp_path / f"{model.registry_name}.ckpt"
        torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                    "pytorch-lightning_version": L.__version__}, path)
        again = type(model).load_from_checkpoint(path, weights_only=True)
        images = torch.rand(2, 3, 16, 16) * 2 - 1
        direction = "BtoA" if model.registry_name == "pix2pix" else "AtoB"
        assert torch.equal(again.translate(images, direction), model.translate(images, direction))
    assert again.direction == "BtoA"


def write_plugin(root: Path, target: str) -> None:
    """A package 'gan_plugin' with a DCGAN variant, installed into ``root`` with a gan_lightning.models entry."""
    (root / "gan_plugin.py").write_text(
        "from dataclasses import dataclass\n"
        "from gan_lightning.models.dcgan import DCGAN, DCGANConfig\n\n"
        "@dataclass\nclass TinyConfig(DCGANConfig):\n    name: str = 'plugin_dcgan'\n    width_g: int = 4\n\n"
        "class TinyDCGAN(DCGAN):\n    Config = TinyConfig\n")
    info = root / "gan_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gan-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[gan_lightning.models]\nplugin_dcgan = {target}\n")


def test_a_model_in_another_package_registers_through_its_entry_point(tmp_path: Path, monkeypatch) -> None:
    write_plugin(tmp_path, "gan_plugin:TinyDCGAN")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        model_cls = registry.get_model_class("plugin_dcgan")
        assert model_cls.__name__ == "TinyDCGAN" and model_cls.registry_name == "plugin_dcgan"
        assert "plugin_dcgan" in registry.model_names()
        assert model_cls(sample_shape=(1, 28, 28)).config.width_g == 4
    finally:
        registry.MODELS.pop("plugin_dcgan", None)
        sys.modules.pop("gan_plugin", None)


def test_a_broken_entry_point_is_one_line(tmp_path: Path, monkeypatch) -> None:
    write_plugin(tmp_path, "gan_plugin:NoSuchClass")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(ConfigError, match=r"^entry point plugin_dcgan = gan_plugin:NoSuchClass "
                                              r"\(gan_lightning.models\): cannot load it: AttributeError"):
            registry.get_model_class("dcgan")
    finally:
        sys.modules.pop("gan_plugin", None)
