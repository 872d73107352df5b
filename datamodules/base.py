"""In-memory datasets served as whole batches.

Small GANs are data-bound when every item goes through PIL and a collate function, so each dataset is
decoded once into one uint8 tensor and batches are sliced out of it. The loader is also *stateful*
(``state_dict``/``load_state_dict``, which Lightning saves in checkpoints): a resumed run continues with
exactly the batches an uninterrupted run would have seen, which makes resume bit-for-bit reproducible.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from datamodules.digest import tensor_digest
from gan_lightning.data_io import uint8_to_unit_range
from gan_lightning.errors import ConfigError, GanLightningError, check_values

FINGERPRINT_VERSION = "v2"  # block digests (datamodules.digest); before: one blake2b over every byte


def download_failed(what: str, error: BaseException, by_hand: str) -> GanLightningError:
    """The one-line error of a failed download: what failed, the error squeezed to one short line, what to place
    where by hand (network errors come in many types; all mean the same to the user)."""
    reason = " ".join(str(error).split())[:200]
    return GanLightningError(f"{what} failed ({type(error).__name__}: {reason}); {by_hand}")


class ConsumedCounter:
    """The state of a resumable batch loader: how many batches reached training (see ``InMemoryBatches``)."""

    consumed: int = 0

    def mark_consumed(self) -> None:
        self.consumed += 1

    def state_dict(self) -> dict[str, int]:
        return {"consumed": self.consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.consumed = int(state["consumed"])


class InMemoryBatches(ConsumedCounter):
    """Shuffled mini-batches over tensors held in memory, one shard per DDP rank.

    Batch ``b`` (counted over all epochs) is batch ``b % len`` of epoch ``b // len``, whose order is a
    permutation drawn from the seed and the epoch. So the whole state is one number, the batches consumed,
    and a resumed run sees exactly the batches an uninterrupted one would have.

    "Consumed" is not "yielded": Lightning's fetcher reads one batch ahead. With ``count_on_yield=False``
    the owner calls :meth:`mark_consumed` when a batch really reaches training (the datamodule does it in
    ``on_before_batch_transfer``); standalone use counts every yielded batch.
    """

    def __init__(self, tensors: tuple[Tensor, ...], batch_size: int, seed: int = 0, shuffle: bool = True,
                 transform: Callable[[Tensor], Tensor] | None = None, rank: int = 0, world_size: int = 1,
                 count_on_yield: bool = True):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.tensors, self.batch_size, self.seed, self.shuffle = tensors, batch_size, seed, shuffle
        self.transform = transform
        self.rank, self.world_size = rank, world_size
        self.count_on_yield = count_on_yield
        self.per_rank = tensors[0].shape[0] // world_size
        if self.per_rank < batch_size:
            raise ValueError(f"{tensors[0].shape[0]} samples over {world_size} rank(s) is fewer than one batch "
                             f"of {batch_size}")
        self.consumed = 0

    def __len__(self) -> int:  # full batches only: a ragged last batch would upset batchnorm and packing
        return self.per_rank // self.batch_size

    def _order(self, epoch: int) -> Tensor:
        n = self.tensors[0].shape[0]
        if not self.shuffle:
            order = torch.arange(n)
        else:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
        return order[self.rank : self.per_rank * self.world_size : self.world_size]

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        # Runs at the first next(), when every batch yielded before has been consumed.
        epoch, first = divmod(self.consumed, len(self))
        order = self._order(epoch)
        for index in range(first, len(self)):
            rows = order[index * self.batch_size : (index + 1) * self.batch_size]
            if self.count_on_yield:
                self.consumed += 1
            batch = tuple(t[rows] for t in self.tensors)
            yield (self.transform(batch[0]), *batch[1:]) if self.transform else batch


@dataclass
class DataConfig:
    """Keys every datamodule accepts."""

    name: str = "?"  # registered datamodule (gan-lightning list)
    batch_size: int = 64  # samples per training batch (per device)
    limit: int | None = None  # use only the first N samples (quick experiments, tests)


class BatchedDataModule(L.LightningDataModule, abc.ABC):
    """What every datamodule here shares: config checks, a stateful batch loader whose position is counted when a
    batch reaches training (exact resume), a digest of the data, and a dry-run check of the batch arithmetic.
    Subclasses say how to load the data (``setup``), how to batch it (``make_batches``) and what is real data for
    metrics (``real_samples``)."""

    Config = DataConfig
    registry_name = "?"

    def __init__(self, config: DictConfig | dict[str, Any] | None = None, seed: int = 0, **options: Any):
        """``config``: the ``data`` section (as the CLI validated it), or a mapping of some keys; ``options``: more
        keys as keywords (``DigitsDataModule(batch_size=32)``); the rest take the Config's defaults."""
        super().__init__()
        if not isinstance(config, DictConfig) or options:
            from gan_lightning.config import merge_schema

            values = OmegaConf.to_container(config) if isinstance(config, DictConfig) else dict(config or {})
            config = merge_schema(self.Config, {"name": self.registry_name, **values, **options}, "data")
            self.check_config(config)
        self.config = config
        self.seed = seed
        self._train_batches: Any = None
        self._fingerprint: str | None = None

    @classmethod
    def check_config(cls, config: DictConfig) -> None:
        """Value checks beyond types; raise ConfigError naming the key."""
        check_values("data", config, [("batch_size", config.batch_size >= 1, "an int >= 1"),
                                      ("limit", config.limit is None or config.limit >= 1, "null or an int >= 1")])

    @property
    def batch_size(self) -> int:
        return self.config.batch_size

    # --- what subclasses provide --------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample, known before ``setup`` so models can be built first."""

    @property
    def num_classes(self) -> int | None:
        """Classes of the labels (single-label data), or the length K of the label vectors (multi-label data)."""
        return None

    @property
    def multi_label(self) -> bool:
        """True when a label is a float32 multi-hot vector of K attributes (several may hold at once) rather than one
        long class index."""
        return False

    @property
    def label_names(self) -> list[str] | None:
        """The name of each class (single-label) or attribute (multi-label); None without labels."""
        return None

    def label_frequencies(self) -> Tensor:
        """Multi-label data: the fraction of served samples having each attribute (float32, K)."""
        raise GanLightningError(f"data.name: {self.registry_name} has no multi-label data")

    @property
    def dataset_id(self) -> str:
        """Identifies the real data (for cached metric statistics)."""
        return self.registry_name

    @abc.abstractmethod
    def make_batches(self, rank: int, world_size: int, count_on_yield: bool) -> Any:
        """The stateful training batch loader of ``rank``; ValueError when a rank would get no full batch."""

    @abc.abstractmethod
    def data_tensors(self) -> list[Tensor]:
        """The data as served (after limits and resizing), for the fingerprint."""

    @abc.abstractmethod
    def real_samples(self, n: int) -> Tensor:
        """``n`` real samples in data space: what generated samples are compared with (metrics, grids)."""

    @abc.abstractmethod
    def real_sample_count(self) -> int:
        """How many real samples ``real_samples`` can give."""

    def needs_download(self) -> bool:
        """True when the data is not here yet and ``prepare_data`` would fetch it (a dry run does not)."""
        return False

    def check_download(self) -> None:
        """What the download ``prepare_data`` would do refuses (a dataset name it cannot fetch, a root it must not
        write into), checked without downloading or writing: ``--dry-run`` calls it in place of the download."""

    # --- shared machinery ---------------------------------------------------------------------------
    def _batches(self, rank: int, world_size: int, count_on_yield: bool) -> Any:
        self.setup()
        try:
            return self.make_batches(rank, world_size, count_on_yield)
        except ValueError as error:
            raise ConfigError(f"data.batch_size: {error}") from None

    def check_batches(self, world_size: int = 1) -> None:
        """Load the data and check that every rank gets at least one full batch (one line naming the key if not)."""
        root = self.config.get("root")
        if root and Path(root).expanduser().is_file():  # otherwise "missing files", which sends the user looking
            raise GanLightningError(f"data.root: {root} is a file, expected a folder")
        self._batches(0, world_size, count_on_yield=True)

    def train_dataloader(self) -> Any:
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        self._train_batches = self._batches(rank, world, count_on_yield=trainer is None)
        return self._train_batches

    def data_blocks(self) -> list[Sequence[str]]:
        """Per tensor of ``data_tensors``, the block digests stored with the cache it was served from (``datamodules.
        digest``), or none: the rows they cover are not read again for the fingerprint."""
        return [() for _ in self.data_tensors()]

    def data_digests(self) -> list[str]:
        """One digest per tensor of ``data_tensors`` (``datamodules.digest.tensor_digest``)."""
        self.setup()
        return [tensor_digest(tensor, blocks)
                for tensor, blocks in zip(self.data_tensors(), self.data_blocks(), strict=True)]

    @property
    def fingerprint(self) -> str:
        """A digest of the data as served (after limit and resize): a resumed run checks that it trains on the
        data its checkpoint was trained on, wherever that data now lives."""
        if self._fingerprint is None:
            self.setup()
            digest = hashlib.blake2b(digest_size=16)
            for part in self.data_digests():
                digest.update(part.encode())
            self._fingerprint = f"{FINGERPRINT_VERSION}:{digest.hexdigest()}"
        return self._fingerprint

    def matches_fingerprint(self, stored: str) -> bool:
        """Whether a checkpoint's fingerprint is this data's. Checkpoints from before block digests hold a plain
        hex digest of the whole byte stream: those are compared with that (slower) digest, so they still resume."""
        if stored.startswith(f"{FINGERPRINT_VERSION}:"):
            return stored == self.fingerprint
        self.setup()
        digest = hashlib.blake2b(digest_size=16)
        for tensor in self.data_tensors():
            digest.update(str((tuple(tensor.shape), tensor.dtype)).encode())
            digest.update(tensor.contiguous().numpy().data)
        return stored == digest.hexdigest()

    def state_dict(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint}

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # Lightning calls this once per batch that reaches training_step (after its read-ahead).
        if self._train_batches is not None and self.trainer is not None and self.trainer.training:
            self._train_batches.mark_consumed()
        return batch


class InMemoryDataModule(BatchedDataModule):
    """Base for datasets that fit in memory as one tensor: subclasses say how to ``load`` samples and their
    shape."""

    def __init__(self, config: DictConfig | dict[str, Any] | None = None, seed: int = 0, **options: Any):
        super().__init__(config, seed, **options)
        self.samples: Tensor | None = None
        self.labels: Tensor | None = None
        # Block digests of the samples ``load`` returned, when a cache stored them (datamodules.digest): the
        # fingerprint of the served prefix then reads none of the rows they cover.
        self.sample_blocks: list[str] = []

    @abc.abstractmethod
    def load(self) -> tuple[Tensor, Tensor | None]:
        """All samples (uint8 N x C x H x W images, or float points) and labels (or None)."""

    def batch_transform(self, samples: Tensor) -> Tensor:
        return uint8_to_unit_range(samples)

    def setup(self, stage: str | None = None) -> None:
        if self.samples is not None:
            return
        samples, labels = self.load()
        if self.config.limit is not None:
            samples, labels = self.subset(samples, labels, self.config.limit)
        self.samples, self.labels = samples, labels

    def subset(self, samples: Tensor, labels: Tensor | None, n: int) -> tuple[Tensor, Tensor | None]:
        """The ``n`` samples (and labels) that ``data.limit`` keeps: the first ones."""
        return samples[:n], labels[:n] if labels is not None else None

    def make_batches(self, rank: int, world_size: int, count_on_yield: bool) -> InMemoryBatches:
        tensors = (self.samples,) if self.labels is None else (self.samples, self.labels)
        return InMemoryBatches(tensors, self.config.batch_size, self.seed, transform=self.batch_transform,
                               rank=rank, world_size=world_size, count_on_yield=count_on_yield)

    def data_tensors(self) -> list[Tensor]:
        return [t for t in (self.samples, self.labels) if t is not None]

    def data_blocks(self) -> list[Sequence[str]]:
        return [self.sample_blocks] + ([()] if self.labels is not None else [])

    def label_frequencies(self) -> Tensor:
        if not self.multi_label:
            return super().label_frequencies()
        self.setup()
        return self.labels.float().mean(0)

    def real_samples(self, n: int) -> Tensor:
        """The first ``n`` samples in data space (for metrics and side-by-side grids)."""
        self.setup()
        return self.batch_transform(self.samples[:n])

    def real_sample_count(self) -> int:
        self.setup()
        return int(self.samples.shape[0])

    def real_samples_of_class(self, label: int, n: int | None = None) -> Tensor:
        """The first ``n`` (all if None) samples of class ``label`` in data space (intra-class metrics)."""
        self.setup()
        if self.labels is None or self.multi_label:
            raise GanLightningError(f"data.name: {self.registry_name} has no single class label per sample")
        return self.batch_transform(self.samples[self.labels == label][:n])


@dataclass
class ImageDataConfig(DataConfig):
    image_size: int | None = None  # resize once at load (e.g. 32 or 64 for DCGAN nets of that size)
    # null: data.limit keeps the first N samples; an int: N samples drawn without replacement by a permutation seeded
    # with it (the same subset on every machine). The embedded digits are sorted by class: their first 1,000 are
    # only 0s and 1s, so a small-data subset of them needs this.
    limit_seed: int | None = None


class ImageDataModule(InMemoryDataModule):
    """Square uint8 images with labels: subclasses say their native size/channels and ``load_images``."""

    Config = ImageDataConfig
    native_size = 28
    channels = 1
    classes = 10

    @classmethod
    def check_config(cls, config: DictConfig) -> None:
        super().check_config(config)
        check_values("data", config, [("image_size", config.image_size is None or config.image_size >= 8,
                                       "null or an int >= 8"),
                                      ("limit_seed", config.limit_seed is None or config.limit_seed >= 0,
                                       "null or an int >= 0")])
        if config.limit_seed is not None and config.limit is None:
            raise ConfigError("data.limit_seed: chooses which data.limit samples to keep; set data.limit too")

    def subset(self, samples: Tensor, labels: Tensor | None, n: int) -> tuple[Tensor, Tensor | None]:
        if self.config.limit_seed is None:
            return super().subset(samples, labels, n)
        keep = torch.randperm(samples.shape[0], generator=torch.Generator().manual_seed(self.config.limit_seed))[:n]
        self.sample_blocks = []  # stored block digests cover rows in load order, not this selection
        return samples[keep], labels[keep] if labels is not None else None

    @property
    def sample_shape(self) -> tuple[int, ...]:
        size = self.config.image_size or self.native_size
        return (self.channels, size, size)

    @property
    def num_classes(self) -> int:
        return self.classes

    @abc.abstractmethod
    def load_images(self) -> tuple[Tensor, Tensor]:
        """uint8 N x C x H x W images at the native size, and long labels."""

    def load(self) -> tuple[Tensor, Tensor]:
        images, labels = self.load_images()
        if self.config.image_size:
            images = resize_images(images, self.config.image_size)
        return images, labels


def resize_images(images: Tensor, size: int) -> Tensor:
    """Resize uint8 N x C x H x W images once, bilinear with antialiasing (no aliasing when shrinking)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = [F.interpolate(chunk.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
           for chunk in images.split(4096)]
    return torch.cat(out).round_().clamp_(0, 255).to(torch.uint8)
