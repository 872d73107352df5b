"""Any folder of jpg/png images (FFHQ thumbnails, LSUN exports ...): ``data.name: folder``.

The images are decoded once into a uint8 cache (``datamodules.image_folder``: parallel decode, one ``.npy`` written
chunk by chunk, memory-mapped by every later run) and served by the in-memory batch loader of ``datamodules.base``,
so batching, exact resume and DDP sharding are the ones every datamodule has. Only the rows of a batch are read from
the memory map; the data's fingerprint comes from the digests stored beside the cache, so a 200,000-image dataset is
never re-read at start-up.

``data.labels: true`` makes every subfolder of ``data.root`` a class (sorted names = class indices); the images of
the classes are interleaved (first image of each class, then the second ...) so that ``data.limit`` and the first
``n`` real samples cover every class.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import Tensor

from datamodules.base import DataConfig, InMemoryDataModule
from datamodules.image_folder import (
    IMAGE_SUFFIXES,
    Preprocess,
    data_cache,
    image_files,
    image_side_check,
    load_image_cache,
)
from gan_lightning.errors import GanLightningError, check_values
from gan_lightning.files import not_a_folder
from gan_lightning.registry import register_datamodule

FOLDER_CROPS = ("none", "center")


@dataclass
class CachedImageConfig(DataConfig):
    """Keys of every datamodule served from the decoded image cache."""

    root: str = "data"
    image_size: int = 64  # images are resized (bicubic) once, when the cache is built
    cache_dir: str | None = None  # decoded uint8 cache; null = $GAN_LIGHTNING_CACHE/data or ~/.cache/gan_lightning
    decode_workers: int | None = None  # processes decoding the images on the first run; null = up to 8


class CachedImageDataModule(InMemoryDataModule):
    """Images listed by a subclass (``image_list``), decoded once through the cache, served as uint8 memory maps."""

    Config = CachedImageConfig

    @classmethod
    def check_config(cls, config: DictConfig) -> None:
        super().check_config(config)
        check_values("data", config, [
            image_side_check("image_size", config.image_size),
            ("decode_workers", config.decode_workers is None or config.decode_workers >= 1, "null or an int >= 1")])

    @property
    def root(self) -> Path:
        return Path(self.config.root).expanduser()

    @property
    @abc.abstractmethod
    def preprocess(self) -> Preprocess:
        """How each file becomes a C x image_size x image_size array (part of the cache key)."""

    @property
    def cache_name(self) -> str:
        """Readable prefix of the cache file name (the key that follows it is what identifies the data)."""
        return self.root.name or "images"

    @abc.abstractmethod
    def image_list(self) -> tuple[list[Path], Tensor | None]:
        """The image files in serving order, and their labels (or None); one-line errors for missing data."""

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.preprocess.channels, self.config.image_size, self.config.image_size)

    def load(self) -> tuple[Tensor, Tensor | None]:
        files, labels = self.image_list()
        cache = load_image_cache(files, self.preprocess, data_cache(self.config.cache_dir), self.cache_name,
                                 self.config.decode_workers)
        self.sample_blocks = cache.block_digests
        return cache.images, labels


@dataclass
class FolderConfig(CachedImageConfig):
    name: str = "folder"
    root: str = "data/images"  # folder of jpg/png images
    channels: int = 3  # 3 (RGB) or 1 (grayscale)
    crop: str = "none"  # none (whole image, squashed to a square) | center (a centred square, then resized)
    crop_size: int | None = None  # side of the centre crop; null = the shorter side
    labels: bool = False  # true: one class per subfolder of root (sorted names)
    recursive: bool = False  # also images in subfolders (with labels: in subfolders of each class folder)


@register_datamodule("folder")
class FolderDataModule(CachedImageDataModule):
    Config = FolderConfig

    @classmethod
    def check_config(cls, config: DictConfig) -> None:
        super().check_config(config)
        check_values("data", config, [("channels", config.channels in (1, 3), "1, 3"),
                                      ("crop", config.crop in FOLDER_CROPS, ", ".join(FOLDER_CROPS)),
                                      ("crop_size", config.crop_size is None or config.crop_size >= 1,
                                       "null or an int >= 1")])

    @property
    def preprocess(self) -> Preprocess:
        c = self.config
        return Preprocess(c.image_size, c.channels, c.crop, c.crop_size)

    @property
    def class_names(self) -> list[str] | None:
        """The class subfolders' names (sorted: class i is the i-th), or None without labels."""
        if not self.config.labels:
            return None
        problem = not_a_folder(self.root)
        if problem:
            raise GanLightningError(f"data.root: image folder {self.root} {problem}")
        names = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not names:
            raise GanLightningError(f"data.labels: {self.root} has no class subfolders (with data.labels=true every "
                                    "image lies in ROOT/<class>/)")
        return names

    @property
    def num_classes(self) -> int | None:
        names = self.class_names
        return len(names) if names else None

    @property
    def label_names(self) -> list[str] | None:
        # Stored in the checkpoint and its YAML, which need text: a folder name that is not valid UTF-8 keeps its
        # other bytes as \xNN escapes (the folders themselves are found by their real names).
        names = self.class_names
        return [os.fsencode(name).decode("utf-8", "backslashreplace") for name in names] if names else None

    @property
    def dataset_id(self) -> str:
        # The data digest makes two folders of the same name (or one folder changed) distinct statistics entries.
        return f"folder-{self.root.name}-{self.fingerprint.split(':')[-1][:12]}"

    def image_list(self) -> tuple[list[Path], Tensor | None]:
        names = self.class_names
        if names is None:
            return image_files(self.root, self.config.recursive), None
        loose = sorted(p.name for p in self.root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if loose:
            raise GanLightningError(f"data.labels: {self.root} holds images directly ({loose[0]} ...); with "
                                    "data.labels=true every image lies in a class subfolder ROOT/<class>/")
        per_class = [image_files(self.root / name, self.config.recursive) for name in names]
        # Interleaved (rank within its class, then class): a limit or the first real samples cover every class.
        order = sorted((rank, label, path) for label, files in enumerate(per_class) for rank, path in enumerate(files))
        return [path for _, _, path in order], torch.tensor([label for _, label, _ in order], dtype=torch.long)
