"""CelebA (Liu et al. 2015) in torchvision's layout: ``data.name: celeba``.

Under ``data.root``::

    celeba/img_align_celeba/000001.jpg ...   the 202,599 aligned 178 x 218 faces (img_align_celeba.zip, unzipped)
    celeba/list_attr_celeba.txt              line 1: the count; line 2: the 40 attribute names;
                                             then "000001.jpg -1  1 ..." (1 = has the attribute, -1 = has not)
    celeba/list_eval_partition.txt           "000001.jpg 0": 0 train (162,770), 1 valid (19,867), 2 test (19,962)

``data.split`` serves one official partition (or ``all``). Images get the standard GAN preprocessing: the centred
178 x 178 face crop, then a bicubic resize to ``data.image_size`` (64; 128 works too), decoded once into the uint8
cache of ``datamodules.image_folder`` (one cache file per partition and size). ``data.attributes`` picks labels:
none (unconditional), one (two classes: 1 = has it) or several (multi-label: a float32 multi-hot vector per image,
see ``BatchedDataModule.multi_label``). ``data.download: true`` asks torchvision to fetch the files from Google Drive,
which often refuses ("Too many users have viewed or downloaded this file recently"): the error then says which files
to place where by hand.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import Tensor

from datamodules.base import download_failed
from datamodules.folder import CachedImageConfig, CachedImageDataModule
from datamodules.image_folder import Preprocess
from gan_lightning.errors import ConfigError, GanLightningError, check_values
from gan_lightning.registry import register_datamodule

ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips", "Big_Nose",
    "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses",
    "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks",
    "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick",
    "Wearing_Necklace", "Wearing_Necktie", "Young")
PARTITIONS = {"train": "0", "valid": "1", "test": "2", "all": None}
FACE_CROP = 178  # the aligned faces' centred square (DCGAN / WGAN-GP / SNGAN CelebA preprocessing)
IMAGES, ATTRIBUTE_LIST, PARTITION_LIST = "img_align_celeba", "list_attr_celeba.txt", "list_eval_partition.txt"
LAYOUT = f"celeba/{IMAGES}/*.jpg, celeba/{ATTRIBUTE_LIST}, celeba/{PARTITION_LIST}"


@dataclass
class CelebAConfig(CachedImageConfig):
    name: str = "celeba"
    root: str = "data"  # holds celeba/ (torchvision's layout)
    download: bool = False  # fetch with torchvision (Google Drive; often rate-limited)
    split: str = "train"  # official partition: train | valid | test | all
    attributes: list[str] = field(default_factory=list)  # [] unconditional; [Smiling] 2 classes; several multi-hot


@register_datamodule("celeba")
class CelebADataModule(CachedImageDataModule):
    Config = CelebAConfig

    @classmethod
    def check_config(cls, config: DictConfig) -> None:
        super().check_config(config)
        check_values("data", config, [("split", config.split in PARTITIONS, ", ".join(PARTITIONS))])
        for name in config.attributes:
            if name not in ATTRIBUTES:
                raise ConfigError(f"data.attributes: unknown attribute {name!r}; accepted: {', '.join(ATTRIBUTES)}")
        if len(set(config.attributes)) != len(config.attributes):
            raise ConfigError(f"data.attributes: {list(config.attributes)} names an attribute twice")

    @property
    def folder(self) -> Path:
        return self.root / "celeba"

    @property
    def preprocess(self) -> Preprocess:
        return Preprocess(self.config.image_size, 3, "center", FACE_CROP)

    @property
    def cache_name(self) -> str:
        return f"celeba-{self.config.split}"

    @property
    def dataset_id(self) -> str:
        return f"celeba-{self.config.split}-{self.config.image_size}"

    @property
    def attributes(self) -> list[str]:
        return list(self.config.attributes)

    @property
    def num_classes(self) -> int | None:
        count = len(self.attributes)
        return None if count == 0 else 2 if count == 1 else count

    @property
    def multi_label(self) -> bool:
        return len(self.attributes) > 1

    @property
    def label_names(self) -> list[str] | None:
        names = self.attributes
        if len(names) == 1:
            return [f"not_{names[0]}", names[0]]
        return names or None

    def _missing(self) -> list[Path]:
        expected = [self.folder / IMAGES, self.folder / ATTRIBUTE_LIST, self.folder / PARTITION_LIST]
        return [path for path in expected if not path.exists()]

    def needs_download(self) -> bool:
        return self.config.download and bool(self._missing())

    def prepare_data(self) -> None:
        missing = self._missing()
        if not missing:
            return
        if not self.config.download:
            raise GanLightningError(f"CelebA data missing: {missing[0]} (expected {LAYOUT} under {self.root}; "
                                    "set data.download=true to fetch them)")
        from torchvision.datasets import CelebA

        created = next((folder for folder in (self.root, self.folder) if not folder.exists()), None)
        try:
            CelebA(str(self.root), split="all", target_type="attr", download=True)
        except Exception as error:
            if created is not None:  # made by this download, holding at most its partial files: not the user's
                shutil.rmtree(created, ignore_errors=True)
            raise download_failed(
                f"CelebA download into {self.folder} (Google Drive, often refused with 'Too many users have viewed "
                "or downloaded this file recently')", error,
                f"place {IMAGES}/ (img_align_celeba.zip unzipped), {ATTRIBUTE_LIST} and {PARTITION_LIST} in "
                f"{self.folder} by hand") from None

    def image_list(self) -> tuple[list[Path], Tensor | None]:
        self.prepare_data()
        names, rows = read_attributes(self.folder / ATTRIBUTE_LIST)
        wanted = PARTITIONS[self.config.split]
        if wanted is not None:
            partition = read_partition(self.folder / PARTITION_LIST)
            for file, _ in rows:
                if file not in partition:
                    raise GanLightningError(f"{self.folder / PARTITION_LIST}: no partition for {file}")
            rows = [row for row in rows if partition[row[0]] == wanted]
        if not rows:
            raise GanLightningError(f"CelebA partition {self.config.split!r} is empty in {self.folder}")
        files = [self.folder / IMAGES / file for file, _ in rows]
        return files, attribute_labels(names, [values for _, values in rows], self.attributes)

    def real_samples(self, n: int) -> Tensor:
        """The first ``n`` images of the served partition (``data.split``, after ``data.limit``) in [-1, 1]: FID
        statistics of a train run are those of the training faces."""
        return super().real_samples(n)


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise GanLightningError(f"cannot read {path} ({type(error).__name__})") from None


def read_attributes(path: Path) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The attribute names and (file, 40 values as the strings "1"/"-1") per image, in file order."""
    lines = _lines(path)
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise GanLightningError(f"{path}: expected a count on line 1 and the attribute names on line 2")
    names = lines[1].split()
    rows = []
    for number, line in enumerate(lines[2:], start=3):
        parts = line.split()  # the file pads single-digit values with a second space
        if not parts:
            continue
        if len(parts) != len(names) + 1 or not set(parts[1:]) <= {"1", "-1"}:
            raise GanLightningError(f"{path}, line {number}: expected an image name and {len(names)} values of 1 "
                                    "or -1")
        rows.append((parts[0], parts[1:]))
    if len(rows) != int(lines[0]):
        raise GanLightningError(f"{path}: line 1 announces {int(lines[0])} images, the file lists {len(rows)}")
    return names, rows


def read_partition(path: Path) -> dict[str, str]:
    """image file -> "0" (train), "1" (valid) or "2" (test)."""
    partition = {}
    for number, line in enumerate(_lines(path), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise GanLightningError(f"{path}, line {number}: expected an image name and 0, 1 or 2")
        partition[parts[0]] = parts[1]
    return partition


def attribute_labels(names: list[str], values: list[list[str]], attributes: list[str]) -> Tensor | None:
    """No attributes: None. One: long 0/1 (1 = has it). Several: float32 N x K multi-hot."""
    if not attributes:
        return None
    missing = [name for name in attributes if name not in names]
    if missing:
        raise GanLightningError(f"{ATTRIBUTE_LIST} has no attribute {missing[0]!r}")
    columns = [names.index(name) for name in attributes]
    hot = torch.tensor([[row[c] == "1" for c in columns] for row in values], dtype=torch.bool)
    return hot[:, 0].long() if len(attributes) == 1 else hot.float()


def fake_attribute(index: int, attribute: int) -> bool:
    """The attribute values of ``write_fake_celeba``: image ``index`` (1-based) has attribute ``attribute`` (0-based)
    when (index + attribute) is a multiple of 3."""
    return (index + attribute) % 3 == 0


def write_fake_celeba(root: Path, n: int = 12, noise: float = 0.0, seed: int = 0) -> Path:
    """A CelebA stand-in in torchvision's layout under ``root``/celeba (for tests and benchmarks): ``n`` 178 x 218
    JPEGs, image i a flat colour (red = 20 i mod 256) plus Gaussian ``noise``; attributes by ``fake_attribute``;
    partition by i mod 6 (0-3 train, 4 valid, 5 test), written in the real files' format (double spaces included)."""
    import numpy as np
    from PIL import Image

    folder = Path(root) / "celeba"
    (folder / IMAGES).mkdir(parents=True, exist_ok=True)
    generator = np.random.default_rng(seed)
    names = [f"{index:06d}.jpg" for index in range(1, n + 1)]
    for index, name in enumerate(names, start=1):
        pixels = np.empty((218, 178, 3), dtype=np.float32)
        pixels[:] = (20 * index % 256, 255 - 20 * index % 256, 128)
        if noise:
            pixels += generator.normal(0.0, noise, pixels.shape)
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / IMAGES / name, quality=95)
    rows = [f"{name} " + " ".join(f"{1 if fake_attribute(i, a) else -1:2d}" for a in range(len(ATTRIBUTES)))
            for i, name in enumerate(names, start=1)]
    (folder / ATTRIBUTE_LIST).write_text("\n".join([str(n), " ".join(ATTRIBUTES), *rows]) + "\n")
    partition = [f"{name} {'0' if i % 6 < 4 else '1' if i % 6 == 4 else '2'}" for i, name in enumerate(names, 1)]
    (folder / PARTITION_LIST).write_text("\n".join(partition) + "\n")
    return Path(root)
