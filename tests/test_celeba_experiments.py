"""The CelebA experiments train on a fake CelebA layout, and cgan_celeba conditions on several attributes at once."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datamodules.celeba import ATTRIBUTES, write_fake_celeba
from gan_lightning.checkpoints import load_checkpoint
from gan_lightning.cli import main

CGAN_ATTRIBUTES = ["Smiling", "Male", "Eyeglasses"]  # experiments/cgan_celeba.yaml
TRAIN_IMAGES = [1, 2, 3, 6, 7, 8, 9, 12]  # write_fake_celeba: image i is in train when i % 6 < 4


@pytest.fixture(scope="module")
def celeba_root(tmp_path_factory) -> Path:
    return write_fake_celeba(tmp_path_factory.mktemp("celeba") / "data", n=12)


def tiny(celeba_root: Path, run_dir: Path, steps: int = 2) -> list[str]:
    return [f"data.root={celeba_root}", "data.download=false", "data.image_size=16", "data.batch_size=4",
            f"data.cache_dir={run_dir.parent / 'cache'}", "model.width_g=4", "model.width_d=4",
            "model.latent_dim=8", f"trainer.max_steps={steps}", "trainer.accelerator=cpu", f"run.dir={run_dir}",
            "run.quiet=true", "callbacks.samples.every_n_steps=2", "callbacks.checkpoint.every_n_steps=2"]


@pytest.mark.parametrize("experiment", ["dcgan_celeba", "wgan_gp_celeba", "sngan_celeba", "cgan_celeba"])
def test_celeba_experiment_trains(experiment: str, celeba_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["train", experiment, *tiny(celeba_root, run)]) == 0
    checkpoint = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 2
    assert checkpoint["hyper_parameters"]["sample_shape"] == [3, 16, 16]


def test_cgan_celeba_conditions_on_attribute_vectors(celeba_root: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "cgan_celeba", *tiny(celeba_root, run)]) == 0
    ckpt = run / "checkpoints" / "last.ckpt"
    checkpoint = load_checkpoint(ckpt)
    hparams = checkpoint["hyper_parameters"]
    assert hparams["multi_label"] and hparams["label_names"] == CGAN_ATTRIBUTES and hparams["num_classes"] == 3
    # Metrics draw attributes with the training faces' frequencies: (i + a) % 3 == 0 over the 8 train images.
    columns = [ATTRIBUTES.index(name) for name in CGAN_ATTRIBUTES]
    expected = [sum((i + a) % 3 == 0 for i in TRAIN_IMAGES) / len(TRAIN_IMAGES) for a in columns]
    assert checkpoint["state_dict"]["label_prior"].tolist() == pytest.approx(expected)

    outputs = {}
    for chosen in ("Smiling,Eyeglasses", "Male", ""):
        out = tmp_path / f"faces-{chosen or 'none'}.pt"
        assert main(["sample", str(ckpt), "--n", "4", "--seed", "3", "--attributes", chosen, "--out", str(out)]) == 0
        outputs[chosen] = torch.load(out)
        assert outputs[chosen].shape == (4, 3, 16, 16)
    again = tmp_path / "again.pt"
    assert main(["sample", str(ckpt), "--n", "4", "--seed", "3", "--attributes", "Smiling,Eyeglasses",
                 "--out", str(again)]) == 0
    assert torch.equal(torch.load(again), outputs["Smiling,Eyeglasses"])  # same latents and attributes
    assert not torch.allclose(outputs["Smiling,Eyeglasses"], outputs["Male"])  # same latents, other attributes
    capsys.readouterr()

    for args, words in ((["--attributes", "Smiling,Bald_Eagle"], "unknown attribute 'Bald_Eagle'"),
                        (["--label", "1"], "choose them with --attributes")):
        assert main(["sample", str(ckpt), "--out", str(tmp_path / "x.png"), *args]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0]


def test_one_attribute_is_a_two_class_cgan(celeba_root: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "cgan_celeba", *tiny(celeba_root, run), "data.attributes=[Smiling]"]) == 0
    ckpt = run / "checkpoints" / "last.ckpt"
    hparams = load_checkpoint(ckpt)["hyper_parameters"]
    assert not hparams["multi_label"] and hparams["num_classes"] == 2
    assert hparams["label_names"] == ["not_Smiling", "Smiling"]
    assert main(["sample", str(ckpt), "--n", "4", "--label", "1", "--out", str(tmp_path / "smiling.png")]) == 0
    capsys.readouterr()
    assert main(["sample", str(ckpt), "--attributes", "Smiling", "--out", str(tmp_path / "x.png")]) == 1
    assert "choose one with --label N" in capsys.readouterr().err
