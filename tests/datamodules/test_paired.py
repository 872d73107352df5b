"""The paired (pix2pix) datamodule on tiny generated folders, in both layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from datamodules import image_folder, paired
from datamodules.paired import PairedDataModule
from gan_lightning.errors import GanLightningError


def pair_pixels(image_id: int, size: int, channels: int = 1, noise: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) of pair ``image_id``: flat grays id * 10 (A) and id * 10 + 100 (B) with a bright left column (to see
    flips); with ``noise``, A = B = a random pattern seeded by the id (any crop or flip of it is unique)."""
    shape = (size, size, 3) if channels == 3 else (size, size)
    if noise:
        a = np.random.default_rng(image_id).integers(0, 256, shape, dtype=np.uint8)
        return a, a.copy()
    a, b = np.full(shape, image_id * 10, dtype=np.uint8), np.full(shape, image_id * 10 + 100, dtype=np.uint8)
    a[:, 0], b[:, 0] = 255, 255
    return a, b


def write_pairs(root: Path, split: str, ids: list[int], layout: str = "side_by_side", size: int = 12,
                channels: int = 1, noise: bool = False) -> Path:
    for image_id in ids:
        a, b = pair_pixels(image_id, size, channels, noise)
        name = f"{image_id:03d}.png"
        if layout == "side_by_side":
            (root / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.concatenate([a, b], axis=1)).save(root / split / name)
        else:
            for half, pixels in (("A", a), ("B", b)):
                (root / half / split).mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(root / half / split / name)
    return root


def write_dataset(root: Path, layout: str = "side_by_side", **kwargs) -> Path:
    write_pairs(root, "train", list(range(6)), layout, **kwargs)
    write_pairs(root, "val", [6], layout, **kwargs)
    return write_pairs(root, "test", [7, 8], layout, **kwargs)


def datamodule(root: Path, tmp_path: Path, **overrides) -> PairedDataModule:
    config = OmegaConf.merge(OmegaConf.structured(PairedDataModule.Config), {
        "root": str(root), "load_size": 12, "crop_size": 12, "channels": 1, "batch_size": 1,
        "cache_dir": str(tmp_path / "cache"), **overrides})
    PairedDataModule.check_config(config)
    return PairedDataModule(config, seed=0)


def ids(images: torch.Tensor) -> list[int]:
    """The id of each [-1, 1] image from its centre pixel (B images count 10 more: their gray is id * 10 + 100)."""
    return [round((float(image[0, 6, 6]) + 1) * 127.5 / 10) for image in images]


@pytest.mark.parametrize("layout", ["side_by_side", "folders"])
def test_layouts_directions_and_the_evaluation_split(layout: str, tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "pairs", layout)
    dm = datamodule(root, tmp_path, layout=layout)
    dm.setup()
    assert dm.sample_shape == (1, 12, 12) and dm.eval_split == "test" and dm.dataset_id == "paired-pairs-testB"
    assert {k: [tuple(t.shape) for t in v] for k, v in dm.pairs.items()} == {
        "train": [(6, 1, 12, 12)] * 2, "test": [(2, 1, 12, 12)] * 2}  # val is not loaded when test exists
    inputs, targets = dm.eval_pairs()
    assert ids(inputs) == [7, 8] and ids(targets) == [17, 18] and ids(dm.real_samples(1)) == [17]
    batch = dm.make_batches(0, 1, count_on_yield=True).batch(0)
    assert ids(batch["target"])[0] == ids(batch["input"])[0] + 10  # aligned: the target of the same pair
    reverse = datamodule(root, tmp_path, layout=layout, direction="BtoA")
    assert ids(reverse.eval_pairs()[0]) == [17, 18] and ids(reverse.real_samples(5)) == [7, 8]
    assert reverse.dataset_id == "paired-pairs-testA"
    for folder in [root / "test"] if layout == "side_by_side" else [root / "A" / "test", root / "B" / "test"]:
        __import__("shutil").rmtree(folder)
    fallback = datamodule(root, tmp_path, layout=layout)
    assert fallback.eval_split == "val" and ids(fallback.real_samples(5)) == [16]


def test_both_halves_get_the_same_crop_and_flip(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "pairs", size=16, noise=True)  # A = B: equal crops <=> equal pixels
    dm = datamodule(root, tmp_path, load_size=16, crop_size=12, flip=True, batch_size=3)
    dm.setup()
    batches = dm.make_batches(0, 1, count_on_yield=True)
    whole = {image_id: torch.from_numpy(pair_pixels(image_id, 16, noise=True)[0]) for image_id in range(6)}
    flips, offsets = 0, set()
    for index in range(40):
        batch = batches.batch(index)
        assert batch["input"].shape == (3, 1, 12, 12)
        assert torch.equal(batch["input"], batch["target"])  # pixel for pixel: the same crop and flip
        for crop in batch["input"]:  # locate the crop in its source image: the jitter really varies
            pixels = crop[0].add(1).mul(127.5).round().to(torch.uint8)
            found = [(flip, top, left) for image in whole.values() for flip in (False, True)
                     for top in range(5) for left in range(5)
                     if torch.equal((image.flip(-1) if flip else image)[top : top + 12, left : left + 12], pixels)]
            assert len(found) == 1
            flips += found[0][0]
            offsets.add(found[0][1:])
    assert 30 <= flips <= 90 and len(offsets) > 10  # about half of 120 flipped (binomial: outside has p < 1e-6)


def test_resume_of_the_loader_is_exact(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "pairs", size=16, noise=True)
    dm = datamodule(root, tmp_path, load_size=16, crop_size=12, batch_size=2)
    dm.setup()
    straight = dm.make_batches(0, 1, count_on_yield=True)
    seen = [batch for _, batch in zip(range(14), _endless(straight), strict=False)]
    first = dm.make_batches(0, 1, count_on_yield=True)
    head = [batch for _, batch in zip(range(7), _endless(first), strict=False)]
    resumed = dm.make_batches(0, 1, count_on_yield=True)
    resumed.load_state_dict(first.state_dict())
    tail = [batch for _, batch in zip(range(7), _endless(resumed), strict=False)]
    for got, want in zip(head + tail, seen, strict=True):
        assert torch.equal(got["input"], want["input"]) and torch.equal(got["target"], want["target"])
    orders = [[ids(straight.batch(e * 3 + i)["input"]) for i in range(3)] for e in range(2)]
    assert orders[0] != orders[1]  # a new pair order each epoch


def _endless(loader):
    while True:
        yield from loader


@pytest.mark.parametrize("layout", ["side_by_side", "folders"])
def test_a_second_setup_decodes_nothing(layout: str, tmp_path: Path, monkeypatch) -> None:
    root = write_dataset(tmp_path / "pairs", layout)
    first = datamodule(root, tmp_path, layout=layout)
    first.setup()
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 4  # train and test, A and B

    def no_reading(*args):
        raise AssertionError("read an image although the cache holds it")

    monkeypatch.setattr(image_folder, "decode_image", no_reading)
    monkeypatch.setattr(paired, "check_side_by_side", no_reading)
    second = datamodule(root, tmp_path, layout=layout)
    second.setup()
    assert second.fingerprint == first.fingerprint


def _remove(path: Path) -> None:
    __import__("shutil").rmtree(path)


@pytest.mark.parametrize("layout, damage, words", [
    ("side_by_side", lambda root: _remove(root / "train"),
     r"^paired data missing: expected .*pairs/train and .*pairs/test \(or val\) holding A \| B side by side"),
    ("side_by_side", lambda root: [_remove(root / "test"), _remove(root / "val")], "paired data missing"),
    ("folders", lambda root: _remove(root / "B" / "train"),
     r"^paired data missing: expected .*pairs/A/train, .*pairs/B/train and A/test, B/test \(or val\) with matching"),
    ("folders", lambda root: (root / "A" / "train" / "003.png").rename(root / "A" / "train" / "033.png"),
     r"^.*A/train/033.png has no partner .*B/train/033.png \(2 unpaired in all"),
    ("side_by_side", lambda root: Image.new("L", (25, 12)).save(root / "train" / "999.png"),
     r"^.*train/999.png is 25x12: an odd width cannot hold A \| B side by side"),
    ("side_by_side", lambda root: (root / "train" / "999.png").write_bytes(b"not an image"),
     r"^cannot read image .*train/999.png \(UnidentifiedImageError\)$"),
    ("folders", lambda root: (root / "B" / "test" / "007.png").write_bytes(b"not an image"),
     r"^cannot read image .*B/test/007.png \(UnidentifiedImageError\)$"),
])
def test_bad_data_fails_in_one_line(layout: str, damage, words: str, tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "pairs", layout)
    damage(root)
    with pytest.raises(GanLightningError, match=words) as caught:
        datamodule(root, tmp_path, layout=layout).setup()
    assert "\n" not in str(caught.value)


def test_offline_download_says_where_to_place_the_files(tmp_path: Path, monkeypatch) -> None:
    import urllib.request

    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    dm = datamodule(tmp_path / "facades", tmp_path, download=True)
    assert dm.needs_download()
    with pytest.raises(GanLightningError, match=r"^download of http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/"
                       r"facades.tar.gz failed \(OSError: Name or service not known\); place .*facades/train and "
                       r".*facades/test \(or val\) holding A \| B side by side .* by hand$"):
        dm.setup()
    with pytest.raises(GanLightningError, match=r"data.dataset: 'horses' is not a pix2pix dataset; accepted: facades"):
        datamodule(tmp_path / "horses", tmp_path, download=True).setup()


def test_a_downloaded_archive_is_unpacked_into_the_layout(tmp_path: Path, monkeypatch) -> None:
    """The download path end to end on a local .tar.gz served by a fake urlopen."""
    import tarfile
    import urllib.request

    write_dataset(tmp_path / "archive" / "facades", channels=1)
    archive = tmp_path / "facades.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "archive" / "facades", arcname="facades")
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: open(archive, "rb"))
    dm = datamodule(tmp_path / "data" / "facades", tmp_path, download=True)
    dm.setup()
    assert sorted(p.name for p in (tmp_path / "data" / "facades").iterdir()) == ["test", "train", "val"]
    assert ids(dm.real_samples(2)) == [17, 18]


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_fingerprint_reads_the_digests_stored_with_the_caches(tmp_path: Path, monkeypatch, direction: str) -> None:
    from datamodules import digest

    monkeypatch.setattr(digest, "BLOCK_ROWS", 2)  # blocks of 2 rows: the 6 train and 2 test pairs fill them whole
    root = write_dataset(tmp_path / "data")
    dm = datamodule(root, tmp_path, direction=direction)
    dm.setup()
    every_byte = [digest.tensor_digest(tensor) for tensor in dm.data_tensors()]
    assert [len(blocks) for blocks in dm.data_blocks()] == [3, 3, 1, 1]
    monkeypatch.setattr(digest.BlockHasher, "update", lambda *args: pytest.fail("re-read cached rows"))
    assert dm.data_digests() == every_byte
