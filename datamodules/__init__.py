"""LightningDataModules. Importing this package registers every datamodule by name."""

from datamodules.digits import DigitsDataModule
from datamodules.mnist import MNISTDataModule
from datamodules.paired import PairedDataModule
from datamodules.toy import ToyDataModule
from datamodules.unpaired import UnpairedDataModule

__all__ = ["DigitsDataModule", "MNISTDataModule", "PairedDataModule", "ToyDataModule", "UnpairedDataModule"]
