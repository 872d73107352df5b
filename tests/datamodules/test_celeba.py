"""The CelebA datamodule on a fake torchvision layout of twelve 178 x 218 JPEGs (datamodules.celeba.write_fake_celeba):
partitions, attribute labels, one-line errors, the image cache and the stored data digest."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from datamodules import digest, image_folder
from datamodules.celeba import ATTRIBUTES, CelebADataModule, read_attributes, write_fake_celeba
from gan_lightning.cli import main
from gan_lightning.errors import ConfigError, GanLightningError

TRAIN = [1, 2, 3, 6, 7, 8, 9, 12]  # write_fake_celeba: image i is train when i % 6 < 4


@pytest.fixture
def celeba_root(tmp_path: Path) -> Path:
    return write_fake_celeba(tmp_path / "data", n=12)


def datamodule(root: Path, tmp_path: Path, **overrides) -> CelebADataModule:
    config = OmegaConf.merge(OmegaConf.structured(CelebADataModule.Config), {
        "root": str(root), "image_size": 16, "batch_size": 2, "cache_dir": str(tmp_path / "cache"), **overrides})
    CelebADataModule.check_config(config)
    return CelebADataModule(config, seed=0)


def reds(dm: CelebADataModule) -> list[int]:
    """Image i of the fake set is a flat colour with red 20 i: the served image ids, from the centre pixel."""
    dm.setup()
    return [round(int(red) / 20) for red in dm.samples[:, 0, 8, 8]]


def test_partitions_and_the_face_crop(celeba_root: Path, tmp_path: Path) -> None:
    assert reds(datamodule(celeba_root, tmp_path)) == TRAIN
    assert reds(datamodule(celeba_root, tmp_path, split="valid")) == [4, 10]
    assert reds(datamodule(celeba_root, tmp_path, split="test")) == [5, 11]
    dm = datamodule(celeba_root, tmp_path, split="all")
    assert reds(dm) == list(range(1, 13)) and dm.labels is None and dm.num_classes is None
    assert dm.sample_shape == (3, 16, 16) and dm.samples.shape == (12, 3, 16, 16) and dm.samples.dtype == torch.uint8
    assert dm.dataset_id == "celeba-all-16" and not dm.multi_label and dm.label_names is None
    assert dm.preprocess.crop == "center" and dm.preprocess.crop_size == 178


def test_attribute_file_parsing(celeba_root: Path) -> None:
    names, rows = read_attributes(celeba_root / "celeba" / "list_attr_celeba.txt")
    assert names == list(ATTRIBUTES) and len(rows) == 12
    assert rows[0][0] == "000001.jpg" and rows[0][1][:4] == ["-1", "-1", "1", "-1"]  # (1 + a) % 3 == 0: a = 2
    assert rows[1][1][ATTRIBUTES.index("Smiling")] == "1" and rows[0][1][ATTRIBUTES.index("Male")] == "1"


def test_one_attribute_is_two_classes(celeba_root: Path, tmp_path: Path) -> None:
    dm = datamodule(celeba_root, tmp_path, attributes=["Smiling"])
    dm.setup()
    # Smiling (attribute 31) when (i + 31) % 3 == 0: train images 2 and 8
    assert dm.labels.dtype == torch.long and dm.labels.tolist() == [0, 1, 0, 0, 0, 1, 0, 0]
    assert dm.num_classes == 2 and not dm.multi_label and dm.label_names == ["not_Smiling", "Smiling"]
    batch = next(iter(dm.make_batches(0, 1, count_on_yield=True)))
    assert batch[0].dtype == torch.float32 and batch[1].dtype == torch.long


def test_several_attributes_are_multi_hot(celeba_root: Path, tmp_path: Path) -> None:
    dm = datamodule(celeba_root, tmp_path, attributes=["Smiling", "Male", "Young"])
    dm.setup()
    assert dm.multi_label and dm.num_classes == 3 and dm.label_names == ["Smiling", "Male", "Young"]
    assert dm.labels.dtype == torch.float32 and dm.labels.shape == (8, 3)
    # train images 1, 2, 3: Male (i % 3 == 1), Smiling (i % 3 == 2), Young (i % 3 == 0)
    assert dm.labels[:3].tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 1]]
    torch.testing.assert_close(dm.label_frequencies(), torch.tensor([0.25, 0.25, 0.5]))
    limited = datamodule(celeba_root, tmp_path, attributes=["Smiling", "Male", "Young"], limit=3)
    torch.testing.assert_close(limited.label_frequencies(), torch.full((3,), 1 / 3))  # over the served data


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_unknown_attribute_lists_the_valid_names(celeba_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        datamodule(celeba_root, tmp_path, attributes=["Smiling", "Smiley"])
    assert one_line(error).startswith("data.attributes: unknown attribute 'Smiley'; accepted: 5_o_Clock_Shadow, ")
    assert "Wearing_Necktie, Young" in str(error.value)


@pytest.mark.parametrize("damage, words", [
    (lambda folder: (folder / "list_attr_celeba.txt").unlink(),
     r"CelebA data missing: \S+/celeba/list_attr_celeba.txt \(expected celeba/img_align_celeba/\*.jpg, "
     r"celeba/list_attr_celeba.txt, celeba/list_eval_partition.txt under"),
    (lambda folder: (folder / "list_eval_partition.txt").unlink(), r"CelebA data missing: \S+list_eval_partition.txt"),
    (lambda folder: (folder / "img_align_celeba" / "000003.jpg").unlink(),
     r"cannot read image \S+/img_align_celeba/000003.jpg \(missing\)"),
    (lambda folder: (folder / "img_align_celeba" / "000002.jpg").write_bytes(b"\xff\xd8 truncated"),
     r"cannot read image \S+/img_align_celeba/000002.jpg \("),
])
def test_bad_layouts_fail_in_one_line(celeba_root: Path, tmp_path: Path, damage, words) -> None:
    damage(celeba_root / "celeba")
    with pytest.raises(GanLightningError, match=words) as error:
        datamodule(celeba_root, tmp_path).setup()
    one_line(error)


def test_offline_download_says_what_to_place_where(tmp_path: Path, monkeypatch) -> None:
    import torchvision.datasets

    def rate_limited(*args, **kwargs):
        raise RuntimeError("Too many users have viewed or downloaded this file recently.\nPlease try again later.")

    monkeypatch.setattr(torchvision.datasets, "CelebA", rate_limited)
    dm = datamodule(tmp_path / "empty", tmp_path, download=True)
    assert dm.needs_download()
    with pytest.raises(GanLightningError) as error:
        dm.setup()
    message = one_line(error)
    assert "CelebA download into" in message and "Too many users have viewed" in message
    assert message.endswith(f"place img_align_celeba/ (img_align_celeba.zip unzipped), list_attr_celeba.txt and "
                            f"list_eval_partition.txt in {tmp_path / 'empty' / 'celeba'} by hand")


def test_cache_is_reused_and_invalidated_by_a_changed_image(celeba_root: Path, tmp_path: Path, monkeypatch) -> None:
    first = datamodule(celeba_root, tmp_path)
    first.setup()

    def no_decoding(*args):
        raise AssertionError("decoded an image although the cache holds it")

    monkeypatch.setattr(image_folder, "decode_image", no_decoding)
    again = datamodule(celeba_root, tmp_path)
    again.setup()  # reads no image file
    assert torch.equal(again.samples, first.samples)
    monkeypatch.undo()
    image = celeba_root / "celeba" / "img_align_celeba" / "000001.jpg"
    Image.fromarray(np.full((218, 178, 3), 200, dtype=np.uint8)).save(image)
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))  # even on coarse clocks
    changed = datamodule(celeba_root, tmp_path)
    assert reds(changed)[0] == 10 and reds(changed)[1:] == TRAIN[1:]  # red 200: re-decoded
    assert changed.fingerprint != first.fingerprint


def test_fingerprint_comes_from_the_stored_digest(celeba_root: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(digest, "BLOCK_ROWS", 4)  # blocks of 4 rows, so 8 images make whole blocks
    datamodule(celeba_root, tmp_path).setup()
    assert len(list((tmp_path / "cache").glob("celeba-train-*.npy.digest"))) == 1
    hashed: list[int] = []
    update = digest.BlockHasher.update
    monkeypatch.setattr(digest.BlockHasher, "update", lambda self, rows: (hashed.append(len(rows)), update(self, rows)))
    for limit, fresh_rows in ((None, 0), (6, 2)):  # a limit re-hashes only the rows of its partial block
        hashed.clear()
        dm = datamodule(celeba_root, tmp_path, limit=limit)
        stored = dm.fingerprint
        assert sum(hashed) == fresh_rows
        dm.sample_blocks, dm._fingerprint = [], None  # forget the stored digest: hash every byte
        assert dm.fingerprint == stored
    moved = tmp_path / "moved"
    shutil.copytree(celeba_root, moved)
    assert datamodule(moved, tmp_path).fingerprint == datamodule(celeba_root, tmp_path).fingerprint


@pytest.mark.parametrize("experiment", ["dcgan_celeba", "wgan_gp_celeba", "sngan_celeba"])
def test_shipped_experiments_dry_run_on_the_fake_layout(experiment: str, celeba_root: Path, tmp_path: Path,
                                                        capsys) -> None:
    assert main(["train", experiment, f"data.root={celeba_root}", f"data.cache_dir={tmp_path / 'cache'}",
                 "data.batch_size=4", f"run.dir={tmp_path / 'run'}", "--dry-run"]) == 0
    assert "name: celeba" in capsys.readouterr().out
