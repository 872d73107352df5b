"""Shared fixtures for the metric tests: a tiny deterministic extractor and the real MNIST test split."""

from pathlib import Path

import pytest
import torch
from torch import nn

from gan_lightning.metrics.extractors import FeatureExtractor

MNIST_ROOT = Path(__file__).resolve().parents[3] / "shared" / "data"


class _TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16), nn.Tanh())
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        f = self.body(x)
        return f, self.head(f)


class TinyExtractor(FeatureExtractor):
    """16-d features, 5 logits, on 3x8x8 inputs: fast stand-in for Inception in tests."""

    name = "tiny"
    feature_dim = 16
    num_classes = 5
    input_size = 8
    input_channels = 3

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = _TinyNet()
        self._freeze()


@pytest.fixture
def tiny() -> TinyExtractor:
    return TinyExtractor()


@pytest.fixture(scope="session")
def mnist_test():
    from gan_lightning.metrics.mnist import load_mnist_test

    if not (MNIST_ROOT / "MNIST" / "raw").is_dir():
        pytest.skip(f"real MNIST test split not found under {MNIST_ROOT}")
    return load_mnist_test(MNIST_ROOT)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # These tests run small ops; on a shared 2-core box OpenMP threads spin-waiting for a busy core made them
    # 10-100x slower with 2 threads than with 1. Restored afterwards so other test directories are unaffected.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
