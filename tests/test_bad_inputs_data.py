"""Bad input to the image datasets: file names that are not UTF-8."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datamodules import image_folder
from tests.datamodules.test_folder import datamodule, levels, write_images

REPO = Path(__file__).resolve().parents[1]


# --- file names that are not UTF-8 ------------------------------------------------------------------------------------


def write_raw(folder: Path, name: bytes, level: int) -> None:
    """A flat grey 16 x 16 PNG under the file name ``name`` (bytes, as the OS stores them)."""
    with open(os.path.join(os.fsencode(folder), name), "wb") as handle:
        Image.fromarray(np.full((16, 16), level, dtype=np.uint8)).save(handle, "PNG")


def train(tmp_path: Path, model: str, data: str, *extra: str) -> subprocess.CompletedProcess:
    """``gan-lightning train`` of a tiny ``model`` on a folder dataset (``data``: more keys of its data section)."""
    experiment = tmp_path / "folder.yaml"
    experiment.write_text(
        f"model: {{name: {model}, latent_dim: 8, width_g: 4, width_d: 4}}\n"
        f"data: {{name: folder, image_size: 16, batch_size: 4, cache_dir: {tmp_path / 'cache'}, {data}}}\n"
        "trainer: {accelerator: cpu, max_steps: 2}\n"
        "callbacks: {samples: {every_n_steps: 2, n: 4, nrow: 2}, checkpoint: {every_n_steps: 2}}\n"
        f"run: {{quiet: true, dir: {tmp_path / 'run'}}}\n")
    return subprocess.run([sys.executable, "-m", "gan_lightning", "train", str(experiment), *extra],
                          capture_output=True, text=True, errors="backslashreplace", cwd=REPO)


def test_file_names_that_are_not_utf8_are_cached_and_found_again(tmp_path: Path, monkeypatch) -> None:
    write_images(tmp_path / "faces", [10, 20])
    write_raw(tmp_path / "faces", b"\xff\xfe.png", 30)
    write_raw(tmp_path / "faces", b"caf\xe9.png", 40)  # Latin-1, not UTF-8
    dm = datamodule(tmp_path / "faces", tmp_path)
    dm.setup()
    assert levels(dm.samples) == [10, 20, 40, 30]  # path order: "caf\udce9" < "\udcff\udcfe"
    monkeypatch.setattr(image_folder, "decode_image", lambda *args: pytest.fail("decoded again"))
    again = datamodule(tmp_path / "faces", tmp_path)
    again.setup()
    assert levels(again.samples) == [10, 20, 40, 30]


def test_class_folders_that_are_not_utf8_train_and_keep_readable_names(tmp_path: Path) -> None:
    root = tmp_path / "pets"
    for folder, level in ((b"c\xffat", 10), (b"dog", 20)):
        os.makedirs(os.path.join(os.fsencode(root), folder))
        for index in range(4):
            write_raw(Path(os.fsdecode(os.path.join(os.fsencode(root), folder))), b"x%d\xfe.png" % index, level)
    dm = datamodule(root, tmp_path, labels=True)
    dm.setup()
    assert dm.label_names == ["c\\xffat", "dog"] and levels(dm.samples) == [10, 20] * 4
    result = train(tmp_path, "cgan", f"root: {root}, labels: true")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "label_names:\n- c\\xffat\n- dog\n" in (tmp_path / "run" / "hparams.yaml").read_text()


def test_an_unreadable_file_with_a_non_utf8_name_is_one_line(tmp_path: Path) -> None:
    write_images(tmp_path / "faces", [10])
    with open(os.path.join(os.fsencode(tmp_path / "faces"), b"\xff.png"), "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n not really")
    result = train(tmp_path, "dcgan", f"root: {tmp_path / 'faces'}", "--dry-run")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"error: cannot read image {tmp_path / 'faces'}/\\udcff.png (UnidentifiedImageError)\n"
    assert not (tmp_path / "run").exists()
