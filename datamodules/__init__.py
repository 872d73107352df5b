"""LightningDataModules. Importing this package registers every datamodule by name."""

from datamodules.digits import DigitsDataModule
from datamodules.mnist import MNISTDataModule

__all__ = ["DigitsDataModule", "MNISTDataModule"]
