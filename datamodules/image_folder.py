"""Folders of jpg/png images decoded once into a uint8 array cache, memory-mapped by every later run.

A folder is decoded (with a progress bar) into one N x C x S x S uint8 ``.npy`` file under the cache dir, keyed
by the folder's file names, sizes and modification times, the size S and the channel count: a changed file makes
a new cache entry, an unchanged folder is never decoded again. The array is opened memory-mapped, so a dataset
larger than memory streams from the page cache instead of being held twice.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gan_lightning.checkpoints import atomic_write
from gan_lightning.errors import GanLightningError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
CACHE_ENV = "GAN_LIGHTNING_CACHE"


def default_data_cache() -> Path:
    root = os.environ.get(CACHE_ENV)
    return (Path(root) if root else Path.home() / ".cache" / "gan_lightning") / "data"


def image_files(folder: Path) -> list[Path]:
    """The images of ``folder`` in name order; one line if it is missing or holds none."""
    if not folder.is_dir():
        raise GanLightningError(f"image folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise GanLightningError(f"image folder {folder} holds no {'/'.join(IMAGE_SUFFIXES)} images")
    return files


def _cache_key(files: list[Path], size: int, channels: int) -> str:
    digest = hashlib.blake2b(digest_size=12)
    digest.update(f"v1 size={size} channels={channels} resize=bicubic".encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def decode_image(path: Path, size: int, channels: int) -> np.ndarray:
    """One image as C x size x size uint8 (resized whole, bicubic as in the CycleGAN code); one line if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB" if channels == 3 else "L").resize((size, size), Image.BICUBIC)
            array = np.asarray(image, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise GanLightningError(f"cannot read image {path} ({type(error).__name__})") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def cached_folder(folder: Path, size: int, channels: int, cache_dir: Path | None = None) -> Tensor:
    """All images of ``folder`` as a uint8 N x C x size x size tensor over a memory-mapped cache file."""
    files = image_files(folder)
    cache_dir = cache_dir or default_data_cache()
    path = cache_dir / f"{folder.name}-{_cache_key(files, size, channels)}.npy"
    if not path.is_file():
        from tqdm import tqdm

        array = np.empty((len(files), channels, size, size), dtype=np.uint8)
        for index, file in enumerate(tqdm(files, desc=f"decoding {folder}", unit="img", file=sys.stderr,
                                          disable=None)):  # no bar when stderr is not a terminal
            array[index] = decode_image(file, size, channels)
        try:
            atomic_write(path, lambda file: np.save(file, array))
        except OSError as error:
            raise GanLightningError(f"data.cache_dir: cannot write the image cache to {cache_dir} "
                                    f"({error.strerror or type(error).__name__})") from None
    # Copy-on-write memory map: pages come from the file on first touch and nothing is ever written back.
    return torch.from_numpy(np.load(path, mmap_mode="c"))
