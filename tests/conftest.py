"""Shared fixtures: fake MNIST IDX files, the real test split beside the repo, offline W&B."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "offline")  # nothing in the tests may reach a server
os.environ.setdefault("WANDB_SILENT", "true")
# Cached real statistics from a test must never land in (or be read from) the user's cache.
os.environ["GAN_LIGHTNING_CACHE"] = tempfile.mkdtemp(prefix="gan_lightning_test_cache_")
torch.set_num_threads(min(2, torch.get_num_threads()))

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data"


def write_fake_mnist(root: Path, split: str = "train", n: int = 256, gz: bool = True) -> torch.Tensor:
    """IDX files in torchvision's layout: class c is a bright c-th column band (easy to check by eye)."""
    from gan_lightning.data_io import write_idx

    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    labels = torch.arange(n) % 10
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    for i, label in enumerate(labels.tolist()):
        images[i, :, 2 + 2 * label : 4 + 2 * label] = 255
    prefix = "train" if split == "train" else "t10k"
    suffix = ".gz" if gz else ""
    write_idx(raw / f"{prefix}-images-idx3-ubyte{suffix}", images)
    write_idx(raw / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return images


@pytest.fixture
def fake_mnist(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_fake_mnist(root)
    return root


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test, restored after: tiny nets gain nothing from threads, and on a loaded 2-core
    machine OpenMP threads spin-waiting for a busy core made such tests 10-40x slower with 2 threads than with 1."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_overrides(data_root: Path, run_dir: Path, steps: int = 4) -> list[str]:
    """A DCGAN small enough to train a few steps in about a second."""
    return [f"data.root={data_root}", "data.download=false", "data.batch_size=8", "data.limit=64",
            "model.width_g=4", "model.width_d=4", "model.latent_dim=8", f"trainer.max_steps={steps}",
            f"run.dir={run_dir}", "run.quiet=true", "callbacks.samples.every_n_steps=2", "callbacks.samples.n=16",
            "callbacks.checkpoint.every_n_steps=2", "trainer.log_every_n_steps=1",
            "callbacks.metrics.enabled=false"]


def assert_same_state(a: dict, b: dict) -> None:
    """Two checkpoints hold the same step, bit-identical weights and buffers, and identical optimizer states."""
    assert a["global_step"] == b["global_step"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    for opt_a, opt_b in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        for state_a, state_b in zip(opt_a["state"].values(), opt_b["state"].values(), strict=True):
            assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def write_unpaired(root: Path, size: int = 16, channels: int = 3, counts: tuple[int, ...] = (6, 4, 3, 3)) -> Path:
    """Random images in the CycleGAN layout (trainA, trainB, testA, testB) with ``counts`` images each."""
    import numpy as np
    from PIL import Image

    generator = np.random.default_rng(0)
    for split, count in zip(("trainA", "trainB", "testA", "testB"), counts, strict=True):
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            shape = (size, size, 3) if channels == 3 else (size, size)
            Image.fromarray(generator.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"{index:03d}.png")
    return root
