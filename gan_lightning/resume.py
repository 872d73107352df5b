"""Exact resume: everything besides the state dict and optimizer states that a resumed run needs in order to draw
and train exactly as an uninterrupted one, saved in and restored from the checkpoint in one place.

- RNG streams: torch (CPU and CUDA), numpy and Python's, of every DDP rank (``rng_states_per_rank``; each rank
  takes its own back), restored at train start, since code between loading and the first batch may draw numbers.
- Weights digests of every rank: a checkpoint holds rank 0's weights, useless if the ranks trained apart.
- The update engine's guard counters (``nonfinite_guard``) and a model's own extra state (CycleGAN's image pools),
  through ``checkpoint_extras`` / ``load_checkpoint_extras``.

The data loader's position is the datamodule's own state (Lightning saves it beside these).
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

from gan_lightning.errors import GanLightningError

# A rank > 0 that starts fresh reseeds with seed + rank * stride: its own latent and dropout streams.
RANK_SEED_STRIDE = 1_000_003


class RanksOutOfSyncError(GanLightningError):
    """DDP ranks ended a batch with different weights."""


def rng_states() -> dict[str, Any]:
    """This process's RNG streams, as tensors and plain tuples (checkpoints load with weights_only=True)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
            "python": random.getstate()}


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(states["python"])


def weights_digest(module: nn.Module) -> str:
    """SHA-256 of every parameter (names, dtypes, shapes, bytes): equal on all DDP ranks if they are in sync."""
    digest = hashlib.sha256()
    for name, param in module.named_parameters():
        digest.update(f"{name}:{param.dtype}:{tuple(param.shape)}".encode())
        digest.update(param.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class ExactResume:
    """Saves a module's resume state into a checkpoint and brings it back (see the module docstring)."""

    def __init__(self) -> None:
        self._rng_to_restore: dict[str, Any] | None = None

    def save(self, module: Any, checkpoint: dict[str, Any]) -> None:
        states = rng_states()
        checkpoint["rng_states"] = states
        trainer = module._trainer
        if trainer is not None and trainer.world_size > 1 and torch.distributed.is_initialized():
            # Every rank dumps the checkpoint (rank 0 writes it), so these collectives are met on all ranks.
            gathered: list[Any] = [None] * trainer.world_size
            torch.distributed.all_gather_object(gathered, (states, weights_digest(module)))
            checkpoint["rng_states_per_rank"] = [rank_states for rank_states, _ in gathered]
            digests = [digest for _, digest in gathered]
            checkpoint["weights_digest_per_rank"] = digests
            if len(set(digests)) > 1:
                apart = [rank for rank, digest in enumerate(digests) if digest != digests[0]]
                raise RanksOutOfSyncError(f"DDP ranks {apart} hold different weights from rank 0 at batch "
                                          f"{int(module.batches_seen)}: gradient synchronisation failed; not saved")
        checkpoint["nonfinite_guard"] = module.engine.state_dict()
        checkpoint.update(module.checkpoint_extras())

    def load(self, module: Any, checkpoint: dict[str, Any]) -> None:
        per_rank = checkpoint.get("rng_states_per_rank")
        trainer = module._trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        self._rng_to_restore = per_rank[rank] if per_rank and len(per_rank) == world else checkpoint.get("rng_states")
        module.engine.load_state_dict(checkpoint.get("nonfinite_guard", {}))
        module.load_checkpoint_extras(checkpoint)

    def at_train_start(self, module: Any) -> None:
        """Restore the loaded RNG streams; on a fresh start, give a rank > 0 streams of its own."""
        states, self._rng_to_restore = self._rng_to_restore, None
        if states:
            set_rng_states(states)
        elif module.trainer.global_rank > 0:  # seeded like rank 0 so far
            L.seed_everything(torch.initial_seed() + module.trainer.global_rank * RANK_SEED_STRIDE, verbose=False)
