"""The unpaired (CycleGAN layout) datamodule on tiny generated folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from datamodules import image_folder
from datamodules.unpaired import UnpairedDataModule
from gan_lightning.errors import GanLightningError


def write_domain(folder: Path, ids: list[int], size: int = 12) -> None:
    """Images whose gray level names them (id * 20) with a bright left column (to see flips)."""
    folder.mkdir(parents=True, exist_ok=True)
    for image_id in ids:
        pixels = np.full((size, size), image_id * 20, dtype=np.uint8)
        pixels[:, 0] = 255
        Image.fromarray(pixels).save(folder / f"{image_id:03d}.png")


@pytest.fixture
def unpaired_root(tmp_path: Path) -> Path:
    root = tmp_path / "a2b"
    write_domain(root / "trainA", list(range(6)))
    write_domain(root / "trainB", [7, 8, 9, 10])
    write_domain(root / "testA", [1, 2])
    write_domain(root / "testB", [11, 12])
    return root


def datamodule(root: Path, tmp_path: Path, **overrides) -> UnpairedDataModule:
    config = OmegaConf.merge(OmegaConf.structured(UnpairedDataModule.Config), {
        "root": str(root), "load_size": 12, "crop_size": 12, "channels": 1, "batch_size": 1,
        "cache_dir": str(tmp_path / "cache"), **overrides})
    return UnpairedDataModule(config, seed=0)


def ids(images: torch.Tensor) -> list[int]:
    """The id of each [-1, 1] image from its centre pixel."""
    return [round((float(image[0, 6, 6]) + 1) * 127.5 / 20) for image in images]


def test_layout_and_shapes(unpaired_root: Path, tmp_path: Path) -> None:
    dm = datamodule(unpaired_root, tmp_path)
    dm.setup()
    assert dm.sample_shape == (1, 12, 12) and dm.num_classes is None and dm.dataset_id == "unpaired-a2b-testB"
    assert {k: tuple(v.shape) for k, v in dm.images.items()} == {
        "trainA": (6, 1, 12, 12), "trainB": (4, 1, 12, 12), "testA": (2, 1, 12, 12), "testB": (2, 1, 12, 12)}
    assert ids(dm.test_images("A")) == [1, 2] and ids(dm.real_samples(5)) == [11, 12]


def test_unaligned_pairs_with_independent_orders(unpaired_root: Path, tmp_path: Path) -> None:
    dm = datamodule(unpaired_root, tmp_path)
    dm.setup()
    batches = dm.make_batches(0, 1, count_on_yield=True)
    assert len(batches) == 6  # an epoch is the larger domain
    epochs = [[batches.batch(e * 6 + i) for i in range(6)] for e in range(3)]
    for epoch in epochs:
        a_ids = [ids(b["A"])[0] for b in epoch]
        b_ids = [ids(b["B"])[0] for b in epoch]
        assert sorted(a_ids) == [0, 1, 2, 3, 4, 5]  # every A image once
        assert set(b_ids) == {7, 8, 9, 10}  # B wraps around within the epoch
    pairings = [{(ids(b["A"])[0], ids(b["B"])[0]) for b in epoch} for epoch in epochs]
    assert pairings[0] != pairings[1] != pairings[2]  # independent shuffles: no fixed pairing


def test_jitter_crops_and_flips(unpaired_root: Path, tmp_path: Path) -> None:
    halves = np.zeros((16, 16), dtype=np.uint8)
    halves[:, 8:] = 200  # dark left half, bright right half: any 12-pixel crop keeps a dark left, bright right edge
    for index in range(6):
        Image.fromarray(halves).save(unpaired_root / "trainA" / f"{index:03d}.png")

    def flips(flip: bool) -> int:
        dm = datamodule(unpaired_root, tmp_path, load_size=16, crop_size=12, flip=flip)
        dm.setup()
        batches = dm.make_batches(0, 1, count_on_yield=True)
        count = 0
        for index in range(60):
            image = batches.batch(index)["A"][0, 0]
            assert image.shape == (12, 12)
            count += int(image[:, 0].mean() > image[:, -1].mean())  # bright side on the left: flipped
        return count

    assert 15 <= flips(True) <= 45  # about half of 60 (binomial, p = 1/2: outside [15, 45] has probability < 1e-4)
    assert flips(False) == 0


def test_resume_of_the_loader_is_exact(unpaired_root: Path, tmp_path: Path) -> None:
    dm = datamodule(unpaired_root, tmp_path, load_size=16, crop_size=12, batch_size=2)
    dm.setup()
    straight = dm.make_batches(0, 1, count_on_yield=True)
    seen = [batch for _, batch in zip(range(20), _endless(straight), strict=False)]
    first = dm.make_batches(0, 1, count_on_yield=True)
    head = [batch for _, batch in zip(range(10), _endless(first), strict=False)]
    resumed = dm.make_batches(0, 1, count_on_yield=True)
    resumed.load_state_dict(first.state_dict())
    tail = [batch for _, batch in zip(range(10), _endless(resumed), strict=False)]
    for got, want in zip(head + tail, seen, strict=True):
        assert torch.equal(got["A"], want["A"]) and torch.equal(got["B"], want["B"])


def _endless(loader):
    while True:
        yield from loader


def test_cache_is_reused_and_invalidated(unpaired_root: Path, tmp_path: Path, monkeypatch) -> None:
    datamodule(unpaired_root, tmp_path).setup()
    cached = sorted((tmp_path / "cache").glob("*.npy"))
    assert len(cached) == 4

    def no_decoding(*args):
        raise AssertionError("decoded an image although the cache holds it")

    monkeypatch.setattr(image_folder, "decode_image", no_decoding)
    datamodule(unpaired_root, tmp_path).setup()  # reads no image file
    monkeypatch.undo()
    write_domain(unpaired_root / "trainB", [12])  # a new file in trainB: only that folder is decoded again
    dm = datamodule(unpaired_root, tmp_path)
    dm.setup()
    assert len(sorted((tmp_path / "cache").glob("*.npy"))) == 5 and len(dm.images["trainB"]) == 5


@pytest.mark.parametrize("damage, words", [
    (lambda root: __import__("shutil").rmtree(root / "testB"), "unpaired data missing: expected testB under"),
    (lambda root: [p.unlink() for p in (root / "trainA").iterdir()], "trainA holds no"),
    (lambda root: (root / "trainB" / "999.png").write_bytes(b"not an image"), "cannot read image"),
])
def test_bad_folders_fail_in_one_line(unpaired_root: Path, tmp_path: Path, damage, words) -> None:
    damage(unpaired_root)
    with pytest.raises(GanLightningError, match=words):
        datamodule(unpaired_root, tmp_path).setup()


def test_offline_download_names_the_folders(tmp_path: Path, monkeypatch) -> None:
    import urllib.request

    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    dm = datamodule(tmp_path / "horse2zebra", tmp_path, download=True)
    assert dm.needs_download()
    with pytest.raises(GanLightningError, match=r"download of http://efrosgans.*horse2zebra.zip failed .*place "
                                                 r"trainA, trainB, testA, testB under"):
        dm.setup()
