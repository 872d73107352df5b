"""MNIST from torchvision's files: ``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``.

torchvision does the download (``data.download: true``); decoding is ours, straight from the IDX files into
one tensor, which also reads the gzip files in place (a read-only copy such as ../shared/data needs no
extraction).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig
from torch import Tensor

from datamodules.base import ImageDataConfig, ImageDataModule, download_failed
from gan_lightning.data_io import read_idx
from gan_lightning.errors import GanLightningError, check_values
from gan_lightning.registry import register_datamodule

_PREFIX = {"train": "train", "test": "t10k"}


@dataclass
class MNISTConfig(ImageDataConfig):
    name: str = "mnist"
    root: str = "data"  # folder holding MNIST/raw (torchvision's layout)
    download: bool = True  # fetch MNIST into root when it is missing (needs network)
    split: str = "train"  # train (60,000 digits) or test (10,000)


@register_datamodule("mnist")
class MNISTDataModule(ImageDataModule):
    Config = MNISTConfig

    @classmethod
    def check_config(cls, config: DictConfig) -> None:
        super().check_config(config)
        check_values("data", config, [("split", config.split in _PREFIX, "train, test")])

    @property
    def dataset_id(self) -> str:
        return f"mnist-{self.config.split}"

    @property
    def raw_folder(self) -> Path:
        return Path(self.config.root) / "MNIST" / "raw"

    def _expected_names(self) -> list[str]:
        prefix = _PREFIX[self.config.split]
        return [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]

    def _find(self) -> list[Path] | None:
        found = []
        for name in self._expected_names():
            candidates = [self.raw_folder / name, self.raw_folder / f"{name}.gz"]
            existing = [p for p in candidates if p.is_file()]
            if not existing:
                return None
            found.append(existing[0])
        return found

    def needs_download(self) -> bool:
        return self.config.download and self._find() is None

    def prepare_data(self) -> None:
        if self._find() is not None:
            return
        names = " and ".join(f"{n}[.gz]" for n in self._expected_names())
        if not self.config.download:
            raise GanLightningError(f"MNIST files missing: expected {names} in {self.raw_folder} "
                                    "(set data.download=true to fetch them)")
        from torchvision.datasets import MNIST

        try:
            MNIST(self.config.root, train=self.config.split == "train", download=True)
        except Exception as error:
            raise download_failed(f"MNIST download into {self.raw_folder}", error,
                                  f"place {names} there by hand") from None

    def load_images(self) -> tuple[Tensor, Tensor]:
        self.prepare_data()
        images_path, labels_path = self._find()
        try:
            images, labels = read_idx(images_path), read_idx(labels_path)
        except (ValueError, OSError, EOFError) as error:
            raise GanLightningError(f"cannot read MNIST in {self.raw_folder}: {error}") from None
        if images.dim() != 3 or labels.shape[0] != images.shape[0]:
            raise GanLightningError(f"{images_path}: expected N x 28 x 28 images matching {labels_path}")
        return images.unsqueeze(1), labels.long()
