"""Experiment configs: every shipped YAML validates; bad input is one line and exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from gan_lightning import config as config_lib
from gan_lightning.cli import main
from gan_lightning.errors import ConfigError


@pytest.mark.parametrize("name", config_lib.experiment_names())
def test_every_experiment_validates(name: str) -> None:
    config = config_lib.load_experiment(name)
    assert set(config) == set(config_lib.SECTIONS)
    assert config.run.dir is not None


def test_overrides_are_typed_dotlist() -> None:
    config = config_lib.load_experiment("dcgan_mnist", ["model.lr_g=1e-4", "trainer.max_steps=500", "run.name=x"])
    assert config.model.lr_g == pytest.approx(1e-4) and isinstance(config.model.lr_g, float)
    assert config.trainer["max_steps"] == 500
    assert config.run.dir == str(Path("runs") / "x")
    assert config.model.n_critic == 1  # defaults of the model's schema are filled in


def test_yaml_path_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("model: {name: gan}\ndata: {name: digits}\ntrainer: {max_steps: 3}\n")
    config = config_lib.load_experiment(str(path))
    assert config.model.hidden_g == [256, 512]


@pytest.mark.parametrize("override, message", [
    ("model.foo=1", "model.foo: unknown key; accepted: name, loss, n_critic"),
    ("model.lr_g=abc", "model.lr_g: Value 'abc' of type 'str' could not be converted to Float (expected float)"),
    ("model.name=nope", "model.name: unknown name 'nope'; accepted: "),
    ("data.name=nope", "data.name: unknown name 'nope'; accepted: "),
    ("trainer.bogus=1", "trainer.bogus: unknown key"),
    ("trainer.max_steps=0", "trainer.max_steps: 0; accepted: a positive int (training batches) or -1"),
    ("callbacks.samples.every=3", "callbacks.samples.every: unknown key; accepted: enabled, every_n_steps, n, nrow"),
    ("logger.wandb.mode=loud", "logger.wandb.mode: 'loud'; accepted: online, offline, disabled"),
    ("run.seed=x", "run.seed: Value 'x' of type 'str' could not be converted to Integer"),
    ("extra.key=1", "extra: unknown section; accepted: model, data, trainer, callbacks, logger, run"),
    ("model.loss=wrong", "model.loss: 'wrong'; accepted: minimax, saturating, non_saturating"),
    ("data.split=val", "data.split: 'val'; accepted: train, test"),
    ("model.d_norm=group", "model.d_norm: 'group'; accepted: batch, layer, none"),
    ("data.batch_size=0", "data.batch_size: 0; accepted: an int >= 1"),
    ("data.limit=0", "data.limit: 0; accepted: null or an int >= 1"),
    ("data.image_size=4", "data.image_size: 4; accepted: null or an int >= 8"),
    ("callbacks.metrics.n_samples=0", "callbacks.metrics.n_samples: 0; accepted: an int >= 10 (is scores 10 splits "
     "of the samples)"),
    ("callbacks.metrics.n_samples=8", "callbacks.metrics.n_samples: 8; accepted: an int >= 10 (is scores 10 splits "
     "of the samples)"),  # the default metrics fid,is,kid: IS's splits decide
])
def test_bad_config_is_one_line_exit_2(override: str, message: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "dcgan_mnist", override, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unknown_experiment_lists_names(capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "no_such_experiment"]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'no_such_experiment'; accepted: " in err
    assert "dcgan_digits" in err and "dcgan_mnist" in err


def test_dry_run_prints_resolved_config(capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "dcgan_mnist", "model.lr_d=3e-4", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "lr_d: 0.0003" in out and "max_steps: 5000" in out


def test_framework_owned_trainer_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="trainer.logger: set by the framework"):
        config_lib.load_experiment("dcgan_mnist", ["trainer.logger=false"])


def test_model_that_cannot_fit_the_data_shape(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["train", "dcgan_digits", "data.image_size=30", f"run.dir={tmp_path / 'r'}", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "model.name: dcgan cannot model samples of shape (1, 30, 30)" in err
    assert not (tmp_path / "r").exists()  # nothing is written before the config is known to be good


def test_unknown_names_list_every_registered_choice(capsys: pytest.CaptureFixture) -> None:
    from gan_lightning import registry

    assert main(["train", "dcgan_mnist", "model.name=nope", "--dry-run"]) == 2
    assert f"accepted: {', '.join(registry.model_names())}\n" in capsys.readouterr().err
    assert main(["train", "dcgan_mnist", "data.name=nope", "--dry-run"]) == 2
    assert f"accepted: {', '.join(registry.datamodule_names())}\n" in capsys.readouterr().err
