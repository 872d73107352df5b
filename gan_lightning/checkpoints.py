"""Checkpoint files: safe loading, atomic writing, and the finite-state rule.

- Every checkpoint a user hands in (``run.resume``, ``sample``, ``evaluate``) is read with
  ``torch.load(weights_only=True)``: tensors, numbers, strings and plain containers only, so a crafted file
  cannot run code. What the framework saves stays within that (RNG states as tensors and tuples, configs as
  plain dicts).
- A checkpoint is written to a temporary file in the same directory, flushed and fsynced, then renamed over the
  target: a kill or a full disk during the write leaves the previous file intact.
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
from gan_lightning.rundir import TEMP_PREFIX, atomic_write  # atomic_write lives there: importing it needs no torch


class NonFiniteStateError(GanLightningError):
    """A model or checkpoint holds NaN/inf values."""


def load_checkpoint(path: str | Path, role: str = "checkpoint") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; any failure is one line naming the file (``role`` says what the
    user passed it as, e.g. ``run.resume``)."""
    path = Path(path)
    if not path.is_file():
        raise GanLightningError(f"{role}: checkpoint {path} does not exist")
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


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` through :func:`atomic_write`."""
    atomic_write(path, lambda file: torch.save(obj, file))


def remove_stale_temporaries(directory: str | Path) -> None:
    """Delete temporary files that a writer killed mid-save left behind."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    for leftover in directory.glob(f"{TEMP_PREFIX}*"):
        leftover.unlink(missing_ok=True)


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with atomic, finite-only writes and ``weights_only=True`` reads (resume)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("SafeCheckpointIO takes no storage_options")
        assert_finite(checkpoint)
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(self, path: Any, map_location: Any | None = None, weights_only: bool | None = None
                        ) -> dict[str, Any]:
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)
