"""The run directory: checks before anything is written, atomic file writes, and one run at a time per directory.

The lock is a file, ``<run dir>/.lock``, created with O_EXCL and holding ``host pid`` (plus ``SLURM_JOB_ID
SLURM_RESTART_COUNT`` inside a SLURM job). A second run on the same directory is refused while the holder lives; a
lock whose process is gone (same host, pid not running) is stale and taken over, so a run killed with SIGKILL never
blocks its directory. A lock left by an earlier incarnation of the current SLURM job (same job id, lower restart
count: a requeued job whose previous run was killed, restarting on this or another node) is stale too: SLURM runs
one incarnation of a job at a time. Any other lock from another host cannot be checked: the message names it, to be
deleted by hand once that run is known to be dead. The restart count, not the job id alone, tells incarnations
apart: two trainings in one allocation share the job id and must still exclude each other.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from gan_lightning.errors import GanLightningError

LOCK_NAME = ".lock"
TEMP_PREFIX = ".tmp-"  # temporary files beside a file being written (atomic_write); left only by a killed writer


class RunDirBusyError(GanLightningError):
    """Another live process trains in this run directory."""


def check_writable(path: str | Path, key: str) -> None:
    """One line if ``path`` (a directory to be created or used) cannot be written: its nearest existing ancestor must
    be a writable directory."""
    path = Path(path).absolute()
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise GanLightningError(f"{key}: cannot create {path}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise GanLightningError(f"{key}: cannot write to {path}: {existing} is not writable")


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


def _slurm_incarnation() -> tuple[str, int] | None:
    """This process's SLURM job id and restart count (0 before any requeue), or None outside SLURM."""
    job = os.environ.get("SLURM_JOB_ID")
    return (job, int(os.environ.get("SLURM_RESTART_COUNT") or 0)) if job else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class RunDirLock:
    """``with RunDirLock(run_dir):`` holds the directory for one run; released on exit, whatever happens."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK_NAME
        self.held = False

    def _owner(self) -> tuple[str, int, tuple[str, int] | None] | None:
        """(host, pid, (SLURM job id, restart count) or None); locks written before the SLURM fields read too."""
        try:
            fields = self.path.read_text().split()
            if len(fields) not in (2, 4):
                raise ValueError(fields)
            return fields[0], int(fields[1]), (fields[2], int(fields[3])) if len(fields) == 4 else None
        except (OSError, ValueError):
            return None  # vanished, or half-written by a holder killed at creation: treated as stale

    def check(self) -> None:
        """Raise RunDirBusyError if a live run holds the directory (without taking it)."""
        owner = self._owner() if self.path.is_file() else None
        if owner is None:
            return
        host, pid, job = owner
        current = _slurm_incarnation()
        if job is not None and current is not None and job[0] == current[0] and job[1] < current[1]:
            return  # left by an earlier incarnation of this requeued job, on any host (its pid may be reused)
        if host != socket.gethostname():
            where = f"host {host}" + (f" (SLURM job {job[0]}, restart {job[1]})" if job else "")
            raise RunDirBusyError(f"run.dir: {self.path.parent} is locked by process {pid} on {where}; if that run "
                                  f"is dead, delete {self.path}")
        if _pid_alive(pid) and pid != os.getpid():
            raise RunDirBusyError(f"run.dir: {self.path.parent} is in use by a running training (process {pid}); "
                                  "wait for it or choose another run.dir")

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):  # the second try follows the removal of a stale lock
            try:
                handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self.check()
                self.path.unlink(missing_ok=True)  # stale: its process (or its SLURM job incarnation) is gone
                continue
            with os.fdopen(handle, "w") as file:
                file.write(" ".join(map(str, (socket.gethostname(), os.getpid(), *(_slurm_incarnation() or ()))))
                           + "\n")
            self.held = True
            return
        raise RunDirBusyError(f"run.dir: could not take the lock {self.path} (another run took it at the same time)")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> RunDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
