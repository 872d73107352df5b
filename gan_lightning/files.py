"""Files, without Lightning: where the caches live, and files written whole or not at all (checkpoints, caches, run
records and metric statistics all go through here).

The caches (decoded image data, real-image statistics) live in folders under one root: ``$GAN_LIGHTNING_CACHE`` if
that variable is set, else ``~/.cache/gan_lightning``. A file is written to a temporary file in the same directory,
flushed and fsynced, then renamed over the target: a kill or a full disk during the write leaves the previous file
intact.

While a temporary file is being written its writer holds an exclusive ``flock`` on it (released by the kernel when
the writer dies, however it dies), so a later process can tell a dead writer's leftover from a live writer's file in
a folder that several processes share (the image cache): :func:`remove_dead_temporaries`.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

CACHE_ENV = "GAN_LIGHTNING_CACHE"
TEMP_PREFIX = ".tmp-"  # temporary files beside a file being written; left only by a killed writer
# A temporary file younger than this is left alone even when unlocked: its writer may not have locked it yet.
TEMP_GRACE_SECONDS = 60.0

try:
    import fcntl
except ImportError:  # not on Windows: temporaries there are never proved dead, so never removed by others
    fcntl = None


def cache_root() -> Path:
    """The folder the caches live under: ``$GAN_LIGHTNING_CACHE``, else ``~/.cache/gan_lightning``."""
    root = os.environ.get(CACHE_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "gan_lightning"


def not_a_folder(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as a folder ("does not exist", "is a file, expected a folder"), or None."""
    path = Path(path)
    if path.is_dir():
        return None
    return "is a file, expected a folder" if path.exists() else "does not exist"


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
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)  # "a live writer": see remove_dead_temporaries
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
    """Delete temporary files that a writer killed mid-save left behind (for a folder only this process writes:
    a run directory under its lock)."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    for leftover in directory.glob(f"{TEMP_PREFIX}*"):
        leftover.unlink(missing_ok=True)


def remove_dead_temporaries(directory: str | Path) -> list[Path]:
    """Delete the temporary files in ``directory`` whose writer is proved dead: no process holds their ``flock``
    (the kernel drops a dead writer's) and they are older than TEMP_GRACE_SECONDS (a writer locks its file right
    after creating it). Safe in a folder other processes write to at the same time; returns what was removed."""
    directory = Path(directory)
    if fcntl is None or not directory.is_dir():
        return []
    removed = []
    for leftover in directory.glob(f"{TEMP_PREFIX}*"):
        try:
            handle = os.open(leftover, os.O_RDONLY)
        except OSError:
            continue  # gone meanwhile (renamed into place or removed by another cleaner)
        try:
            if time.time() - os.fstat(handle).st_mtime < TEMP_GRACE_SECONDS:
                continue
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live writer holds it
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
        finally:
            os.close(handle)
    return removed
