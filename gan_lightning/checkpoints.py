"""Checkpoint files: safe loading, atomic writing, and the finite-state rule.

- Every checkpoint a user hands in (``run.resume``, ``sample``, ``evaluate``) is read with
  ``torch.load(weights_only=True)``: tensors, numbers, strings and plain containers only, so a crafted file
  cannot run code. What the framework saves stays within that (RNG states as tensors and tuples, configs as
  plain dicts).
- A checkpoint is written to a temporary file in the same directory, flushed and fsynced, then renamed over the
  target (``gan_lightning.files``): a kill or a full disk during the write leaves the previous file intact.
- No checkpoint holds non-finite weights: ``assert_finite`` refuses the save (the divergence guard in the base
  module keeps them out in the first place).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from gan_lightning.errors import GanLightningError
from gan_lightning.files import atomic_torch_save


class NonFiniteStateError(GanLightningError):
    """A model or checkpoint holds NaN/inf values."""


def load_checkpoint(path: str | Path, role: str = "checkpoint") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; any failure is one line naming the file (``role`` says what the
    user passed it as, e.g. ``run.resume``)."""
    path = Path(path)
    if not path.is_file():
        problem = "is a folder, expected a checkpoint file" if path.is_dir() else "does not exist"
        raise GanLightningError(f"{role}: checkpoint {path} {problem}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, random or malicious bytes raise many kinds of errors
        reason = " ".join(str(error).split())[:160] if "weights_only" in str(error) else type(error).__name__
        raise GanLightningError(f"{role}: {path} is not a gan-lightning checkpoint ({reason})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("hyper_parameters"), dict) \
            or "config" not in checkpoint["hyper_parameters"] or not isinstance(checkpoint.get("state_dict"), dict):
        raise GanLightningError(f"{role}: {path} is not a gan-lightning checkpoint (no model config or state_dict)")
    return checkpoint


def non_finite_entries(tensors: dict[str, Any]) -> list[str]:
    """Names of the floating-point tensors in ``tensors`` that hold NaN or inf."""
    return [name for name, value in tensors.items()
            if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all())]


def _tensors(item: Any, prefix: str) -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(item, torch.Tensor):
        yield prefix, item
    elif isinstance(item, dict):
        for key, value in item.items():
            yield from _tensors(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(item, (list, tuple)):
        for index, value in enumerate(item):
            yield from _tensors(value, f"{prefix}.{index}")


def assert_finite(checkpoint: dict[str, Any]) -> None:
    """Refuse a checkpoint whose weights, buffers or optimizer states hold NaN/inf."""
    state = {"state_dict": checkpoint.get("state_dict", {}), "optimizer_states": checkpoint.get("optimizer_states", [])}
    bad = non_finite_entries(dict(_tensors(state, "")))
    if bad:
        raise NonFiniteStateError(f"refusing to write a checkpoint with non-finite values ({', '.join(bad[:3])}"
                                  f"{', ...' if len(bad) > 3 else ''}); the previous checkpoint is kept")


class CheckpointWriteError(GanLightningError):
    """A checkpoint could not be written (a full disk, a quota, a read-only folder); the previous file is intact."""


def saved_batch(path: str | Path) -> int | None:
    """The batch (``global_step``) of the checkpoint file ``path``, or None if there is none or it cannot be read.
    Memory-mapped: the weights are not read."""
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("global_step", 0))
    except Exception:  # missing or damaged: no batch to report
        return None


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with atomic, finite-only writes and ``weights_only=True`` reads (resume). A write
    that fails (ENOSPC ...) is one :class:`CheckpointWriteError` line; the temporary file is gone and the previous
    checkpoint untouched (``atomic_write``)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("SafeCheckpointIO takes no storage_options")
        assert_finite(checkpoint)
        try:
            atomic_torch_save(checkpoint, path)
        except OSError as error:
            batch = saved_batch(path)
            kept = f"the previous one (batch {batch}) is intact" if batch is not None else "no earlier one exists"
            raise CheckpointWriteError(f"cannot write checkpoint {path} at batch {checkpoint.get('global_step')} "
                                       f"({error.strerror or type(error).__name__}); {kept}") from None

    def load_checkpoint(self, path: Any, map_location: Any | None = None, weights_only: bool | None = None
                        ) -> dict[str, Any]:
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)
