"""MNIST on IDX files the test writes, on the real test split, and the in-memory batch loader."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from datamodules.base import InMemoryBatches
from datamodules.mnist import MNISTConfig, MNISTDataModule
from gan_lightning.data_io import read_idx, write_idx
from gan_lightning.errors import GanLightningError
from tests.conftest import SHARED_MNIST, write_fake_mnist


def make(root: Path, **kwargs) -> MNISTDataModule:
    return MNISTDataModule(OmegaConf.structured(MNISTConfig(root=str(root), **kwargs)))


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    tensor = torch.randint(0, 256, (5, 3, 4), dtype=torch.uint8)
    path = tmp_path / ("x.idx.gz" if gz else "x.idx")
    write_idx(path, tensor)
    assert torch.equal(read_idx(path), tensor)


def test_truncated_idx_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad"
    path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 9, 1, 2]))
    with pytest.raises(ValueError, match="header says"):
        read_idx(path)


@pytest.mark.parametrize("gz", [True, False])
def test_reads_written_idx_and_normalises(tmp_path: Path, gz: bool) -> None:
    images = write_fake_mnist(tmp_path, "train", n=40, gz=gz)
    dm = make(tmp_path, download=False, batch_size=8)
    dm.setup()
    assert dm.samples.shape == (40, 1, 28, 28) and dm.samples.dtype == torch.uint8
    assert torch.equal(dm.samples[:, 0], images) and dm.labels[:12].tolist() == [*range(10), 0, 1]
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32
    assert x.min().item() == -1.0 and x.max().item() == 1.0  # 0 -> -1, 255 -> 1
    assert set(torch.unique(x).tolist()) == {-1.0, 1.0}


def test_resize_option(tmp_path: Path) -> None:
    write_fake_mnist(tmp_path, "train", n=16)
    dm = make(tmp_path, download=False, image_size=32, batch_size=4)
    assert dm.sample_shape == (1, 32, 32)
    dm.setup()
    assert dm.samples.shape == (16, 1, 32, 32)


def test_missing_files_name_folder_and_files(tmp_path: Path) -> None:
    dm = make(tmp_path, download=False, split="test")
    with pytest.raises(GanLightningError) as info:
        dm.setup()
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "t10k-images-idx3-ubyte[.gz]" in message and "t10k-labels-idx1-ubyte[.gz]" in message


def test_failed_download_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(GanLightningError, match=r"MNIST download into .* failed \(OSError: network unreachable\)"):
        make(tmp_path, download=True).setup()


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="../shared/data not beside the checkout")
def test_real_test_split_from_shared_data() -> None:
    dm = make(SHARED_MNIST, download=False, split="test")
    dm.setup()
    assert dm.samples.shape == (10000, 1, 28, 28)
    assert dm.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the well-known first test labels
    assert torch.bincount(dm.labels).tolist()[0] == 980
    assert dm.dataset_id == "mnist-test"


def test_loader_epochs_reshuffle_and_cover_every_sample() -> None:
    data = torch.arange(40)
    loader = InMemoryBatches((data,), batch_size=8, seed=3)
    first = torch.cat([b[0] for b in loader])
    second = torch.cat([b[0] for b in loader])
    assert sorted(first.tolist()) == list(range(40)) and sorted(second.tolist()) == list(range(40))
    assert not torch.equal(first, second)


def test_loader_resumes_mid_epoch_exactly() -> None:
    data = torch.arange(50)
    straight = InMemoryBatches((data,), batch_size=8, seed=1)
    reference = [b[0] for _ in range(3) for b in straight]  # 3 epochs of 6 batches (2 samples dropped)
    first = InMemoryBatches((data,), batch_size=8, seed=1)
    seen = []
    for batch in first:
        seen.append(batch[0])
        if len(seen) == 4:
            break
    resumed = InMemoryBatches((data,), batch_size=8, seed=1)
    resumed.load_state_dict(first.state_dict())
    while len(seen) < len(reference):
        seen.extend(b[0] for b in resumed)
    assert all(torch.equal(a, b) for a, b in zip(reference, seen, strict=True))


def test_loader_shards_across_ranks_without_overlap() -> None:
    data = torch.arange(64)
    shards = [torch.cat([b[0] for b in InMemoryBatches((data,), 8, seed=0, rank=r, world_size=2)]) for r in (0, 1)]
    assert set(shards[0].tolist()).isdisjoint(shards[1].tolist())
    assert len(shards[0]) == len(shards[1]) == 32
