"""Files, without Lightning: where the caches live, and files written whole or not at all (checkpoints, caches, run
records and metric statistics all go through here).

The caches (decoded image data, real-image statistics) live in folders under one root: ``$GAN_LIGHTNING_CACHE`` if
that variable is set, else ``~/.cache/gan_lightning``. A file is written to a temporary file in the same directory,
flushed and fsynced, then renamed over the target: a kill or a full disk during the write leaves the previous file
intact.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

CACHE_ENV = "GAN_LIGHTNING_CACHE"
TEMP_PREFIX = ".tmp-"  # temporary files beside a file being written; left only by a killed writer


def cache_root() -> Path:
    """The folder the caches live under: ``$GAN_LIGHTNING_CACHE``, else ``~/.cache/gan_lightning``."""
    root = os.environ.get(CACHE_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "gan_lightning"


def atomic_write(path: str | Path, write: Callable[[BinaryIO], Any]) -> None:
    """``write(file)`` into a temporary file beside ``path``, fsync, then rename over ``path`` (and fsync the folder,
    so the rename itself survives a power cut): readers see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temp, 0o666 & ~umask)  # mkstemp makes 0600; the file gets the permissions of any new file
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def atomic_write_text(path: str | Path, text: str) -> None:
    """``text`` (UTF-8) through :func:`atomic_write`."""
    atomic_write(path, lambda file: file.write(text.encode()))


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` through :func:`atomic_write`."""
    import torch  # here, not at the top: compare and sweep write through this module without loading torch

    atomic_write(path, lambda file: torch.save(obj, file))


def write_new_folder(root: str | Path, write: Callable[[Path], Any]) -> None:
    """``write(scratch)`` fills a scratch folder beside ``root``, which is then renamed to ``root``: an interrupted
    write leaves no partial folder under ``root``'s name (nor a scratch folder, unless killed). ``root`` must be
    missing or an empty folder; callers refuse anything else before calling."""
    import shutil

    root = Path(root)
    scratch = root.parent / f".{root.name}.partial"
    shutil.rmtree(scratch, ignore_errors=True)  # left by a killed writer
    scratch.mkdir(parents=True)
    try:
        write(scratch)
        if root.is_dir():
            root.rmdir()  # empty (an OSError, and nothing replaced, if files arrived meanwhile)
        scratch.rename(root)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def remove_stale_temporaries(directory: str | Path) -> None:
    """Delete temporary files that a writer killed mid-save left behind."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    for leftover in directory.glob(f"{TEMP_PREFIX}*"):
        leftover.unlink(missing_ok=True)
