"""Where experiment names are found: the user's folders first, then the shipped ones (source tree or installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gan_lightning import config as config_lib
from gan_lightning.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_a_users_folder_adds_experiments_and_shadows_shipped_ones(tmp_path: Path, monkeypatch, capsys) -> None:
    mine, more = tmp_path / "mine", tmp_path / "more"
    mine.mkdir(), more.mkdir()
    (mine / "my_digits.yaml").write_text((REPO / "experiments" / "dcgan_digits.yaml").read_text())
    shadow = (REPO / "experiments" / "dcgan_mnist.yaml").read_text().replace("latent_dim: 100", "latent_dim: 7")
    (more / "dcgan_mnist.yaml").write_text(shadow)
    monkeypatch.setenv(config_lib.EXPERIMENTS_ENV, f"{mine}{os.pathsep}{more}")
    assert config_lib.load_experiment("my_digits").model.name == "dcgan"
    assert config_lib.load_experiment("dcgan_mnist").model.latent_dim == 7  # the user's copy wins
    assert config_lib.experiment_sources()["gan_grid"] == REPO / "experiments" / "gan_grid.yaml"
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert f"  {mine} ($GAN_LIGHTNING_EXPERIMENTS): my_digits\n" in out
    assert f"  {more} ($GAN_LIGHTNING_EXPERIMENTS): dcgan_mnist\n" in out
    shipped = next(line for line in out.splitlines() if "(shipped)" in line)
    assert "gan_grid" in shipped and "dcgan_mnist" not in shipped.split(": ", 1)[1].split(", ")


def test_an_installed_copy_is_found_without_the_source_tree(tmp_path: Path, monkeypatch) -> None:
    installed = tmp_path / "share" / "gan-lightning" / "experiments"
    installed.mkdir(parents=True)
    shutil.copy(REPO / "experiments" / "gan_grid.yaml", installed)
    monkeypatch.setattr(config_lib, "EXPERIMENTS_DIR", tmp_path / "no-source-tree")
    monkeypatch.setattr(config_lib, "INSTALLED_EXPERIMENTS_DIR", installed)
    monkeypatch.delenv(config_lib.EXPERIMENTS_ENV, raising=False)
    assert config_lib.experiment_names() == ["gan_grid"]
    assert config_lib.load_experiment("gan_grid").model.name == "gan"


def test_the_wheel_installs_the_shipped_experiments_under_share(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for folder in ("gan_lightning", "datamodules", "experiments"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                             "--no-index", "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True)
    if result.returncode and "No module named" in result.stderr:
        pytest.skip(f"cannot build wheels here: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stderr[-1000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.split("/data/share/gan-lightning/", 1)[1] for n in names if "/data/share/gan-lightning/" in n}
    assert shipped == {str(p.relative_to(REPO)) for p in (REPO / "experiments").rglob("*.yaml")}
    assert any(name.startswith("experiments/sweeps/") for name in shipped)
