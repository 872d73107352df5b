"""Digests of data tensors, built from digests of blocks of rows.

A tensor's digest hashes its shape, dtype and the digests of its rows taken ``BLOCK_ROWS`` at a time. Blocks make
the digest of a large memory-mapped cache storable: it is computed once while the cache file is written (the rows
pass through memory then anyway) and saved beside it, and any prefix of the cache (``data.limit``) reuses the stored
blocks it covers whole, hashing only the rows of its last, partial block. The digest depends on the bytes alone,
never on where they live, so a moved dataset keeps its fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import Tensor

from gan_lightning.files import atomic_write_text

BLOCK_ROWS = 256
FORMAT = "blocks-v1"


def _row_bytes(array: np.ndarray) -> memoryview:
    return np.ascontiguousarray(array).data.cast("B")


class BlockHasher:
    """Block digests of rows fed in order, in pieces of any size (the chunks a cache is written in)."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self._open = hashlib.blake2b(digest_size=16)
        self._rows = 0  # rows in the open block

    def update(self, rows: np.ndarray) -> None:
        start = 0
        while start < len(rows):
            take = min(BLOCK_ROWS - self._rows, len(rows) - start)
            self._open.update(_row_bytes(rows[start : start + take]))
            self._rows += take
            start += take
            if self._rows == BLOCK_ROWS:
                self._close()

    def _close(self) -> None:
        self.blocks.append(self._open.hexdigest())
        self._open, self._rows = hashlib.blake2b(digest_size=16), 0

    def finish(self) -> list[str]:
        if self._rows:
            self._close()
        return self.blocks


def block_digests(array: np.ndarray, prefix_blocks: Sequence[str] = ()) -> list[str]:
    """The block digests of ``array``'s rows. ``prefix_blocks``: the block digests of an array of which ``array`` is
    the first rows (its stored cache); the blocks they cover whole are not read again."""
    known = min(len(array) // BLOCK_ROWS, len(prefix_blocks))
    hasher = BlockHasher()
    hasher.blocks = list(prefix_blocks[:known])
    for start in range(known * BLOCK_ROWS, len(array), BLOCK_ROWS):  # block by block: a memory map is paged, not copied
        hasher.update(array[start : start + BLOCK_ROWS])
    return hasher.finish()


def tensor_digest(tensor: Tensor, prefix_blocks: Sequence[str] = ()) -> str:
    """The digest of ``tensor`` (``prefix_blocks``: see ``block_digests``)."""
    array = tensor.numpy() if tensor.dim() else tensor.reshape(1).numpy()
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{FORMAT} {tuple(tensor.shape)} {tensor.dtype}\n".encode())
    for block in block_digests(array, prefix_blocks):
        digest.update(block.encode())
    return digest.hexdigest()


def digest_path(data_file: Path) -> Path:
    return data_file.with_name(data_file.name + ".digest")


def write_block_digests(data_file: Path, blocks: list[str]) -> None:
    """Store the block digests of ``data_file``'s rows beside it (``<file>.digest``)."""
    text = json.dumps({"format": FORMAT, "block_rows": BLOCK_ROWS, "blocks": blocks})
    atomic_write_text(digest_path(data_file), text)


def read_block_digests(data_file: Path, rows: int) -> list[str] | None:
    """The stored block digests of ``data_file`` (of ``rows`` rows), or None when there are none, they are of another
    format, or they are not one digest per block (a damaged or stale file: the caller hashes the data again)."""
    try:
        stored = json.loads(digest_path(data_file).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("format") != FORMAT or stored.get("block_rows") != BLOCK_ROWS:
        return None
    blocks = stored.get("blocks")
    if not (isinstance(blocks, list) and len(blocks) == -(-rows // BLOCK_ROWS)
            and all(isinstance(block, str) and len(block) == 32 for block in blocks)):
        return None
    return blocks
