"""LightningDataModules. Importing this package registers every datamodule by name."""

from datamodules.celeba import CelebADataModule
from datamodules.digits import DigitsDataModule
from datamodules.folder import FolderDataModule
from datamodules.mnist import MNISTDataModule
from datamodules.paired import PairedDataModule
from datamodules.superres import SuperResDataModule
from datamodules.toy import ToyDataModule
from datamodules.unpaired import UnpairedDataModule

__all__ = ["CelebADataModule", "DigitsDataModule", "FolderDataModule", "MNISTDataModule", "PairedDataModule",
           "SuperResDataModule", "ToyDataModule", "UnpairedDataModule"]
