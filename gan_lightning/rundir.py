"""The run directory: checks before anything is written, one run at a time per directory, and the records a run
keeps there besides its config and checkpoints (``resumes.yaml``, ``summary.json``).

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

import errno
import json
import os
import socket
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from gan_lightning.errors import GanLightningError
from gan_lightning.files import atomic_write_text

LOCK_NAME = ".lock"


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
            owner = " ".join(map(str, (socket.gethostname(), os.getpid(), *(_slurm_incarnation() or ())))) + "\n"
            try:
                if os.write(handle, owner.encode()) != len(owner.encode()):  # a full disk can cut a write short
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            except OSError as error:  # no lock at all rather than an empty one that reads as stale
                os.close(handle)
                self.path.unlink(missing_ok=True)
                raise GanLightningError(f"run.dir: cannot take the lock {self.path} "
                                        f"({error.strerror or type(error).__name__})") from None
            os.close(handle)
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


def record_resume(run_dir: Path, batch: int, checkpoint: Path, changes: dict[str, tuple[Any, Any]], quiet: bool
                  ) -> None:
    """Append the resume (at ``batch``, from ``checkpoint``) and its config changes (key -> (old, new)) to
    run.dir/resumes.yaml and say it on stdout (unless ``quiet``)."""
    changes = {key: {"from": old, "to": new} for key, (old, new) in changes.items()
               if key not in ("run.resume", "run.quiet")}
    history = run_dir / "resumes.yaml"
    entries = list(OmegaConf.load(history)) if history.is_file() else []
    entries.append({"batch": batch, "checkpoint": str(checkpoint), "changes": changes})
    atomic_write_text(history, OmegaConf.to_yaml(entries))
    if not quiet:
        listed = ", ".join(f"{k} {v['from']} -> {v['to']}" for k, v in changes.items()) or "no config changes"
        print(f"resuming {run_dir} at batch {batch} ({listed})")


def record_summary(run_dir: Path, batches: int, seconds: float, status: str) -> None:
    """run.dir/summary.json: batches trained, wall seconds of training summed over resumes, how it ended (read by
    ``gan-lightning compare``)."""
    path = run_dir / "summary.json"
    try:
        before = float(json.loads(path.read_text())["seconds"]) if path.is_file() else 0.0
    except (ValueError, KeyError, TypeError):
        before = 0.0
    summary = {"batches": batches, "seconds": round(before + seconds, 3), "status": status}
    atomic_write_text(path, json.dumps(summary, indent=1) + "\n")


def record_summary_or_remove(run_dir: Path, batches: int, seconds: float, status: str) -> str | None:
    """``record_summary``; if it cannot be written (the disk is still full), the old summary is removed rather than
    left describing a state the run has moved past (removing frees space, writing needs it), and the reason is
    returned."""
    try:
        record_summary(run_dir, batches, seconds, status)
    except OSError as error:
        (run_dir / "summary.json").unlink(missing_ok=True)
        return error.strerror or type(error).__name__
    return None


def final_report(run_dir: Path) -> str:
    """The one line a finished run ends with: batches, wall time and how it ended (``summary.json``), the last
    losses (``metrics.csv``), the last scores (``metrics/step_N.json``, else the last val/* of ``metrics.csv``), and
    where the last sample grid, the checkpoint and the run directory are. A part the run did not write is left out."""
    from gan_lightning.callbacks.progress import duration

    parts = []
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
        parts.append(f"{summary['status']}: {summary['batches']} batches in {duration(float(summary['seconds']))}")
    except (OSError, ValueError, KeyError, TypeError):  # no summary (a disk that was full): the rest still helps
        parts.append("done")
    last = _last_logged(run_dir / "metrics.csv")
    losses = [f"{key.removeprefix('train/')} {value:.4g}" for key, value in last.items()
              if key.startswith("train/") and key.endswith("_loss")]
    if losses:
        parts.append(", ".join(losses))
    scores = _last_scores(run_dir) or _csv_scores(last)
    if scores:
        parts.append(scores)
    grids = sorted((run_dir / "samples").glob("step_*.png"))
    if grids:
        parts.append(f"samples {grids[-1]}")
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    if checkpoint.is_file():
        parts.append(f"checkpoint {checkpoint}")
    parts.append(f"run directory {run_dir}")
    return "; ".join(parts)


def _last_scores(run_dir: Path) -> str | None:
    """The last evaluation report's scores, as "scores at batch N (n samples, extractor): fid .., ... (path)"."""
    reports = sorted((run_dir / "metrics").glob("step_*.json"))
    if not reports:
        return None
    try:
        scores = json.loads(reports[-1].read_text())
    except (OSError, ValueError):
        return None  # unreadable: the file is still there to look at
    if not isinstance(scores, dict):
        return None
    shown = [f"{name} {scores[name]:.4g}" for name in ("fid", "is", "kid", "precision", "recall")
             if isinstance(scores.get(name), (int, float))]
    if scores.get("class_histogram"):
        shown.append(f"{scores.get('classes_covered')}/{len(scores['class_histogram'])} classes")
    return (f"scores at batch {scores.get('step')} ({scores.get('n_samples')} samples, {scores.get('extractor')}): "
            f"{', '.join(shown)} ({reports[-1]})")


def _csv_scores(last: dict[str, float]) -> str | None:
    """The last val/* values (mode metrics of the 2-D mixtures, PSNR/SSIM ...), without their spreads (*_std)."""
    shown = [f"{key.removeprefix('val/')} {value:.4g}" for key, value in last.items()
             if key.startswith("val/") and not key.endswith("_std")]
    return f"last scores: {', '.join(shown)}" if shown else None


def _last_logged(path: Path) -> dict[str, float]:
    """Each column's value at the last batch it was logged in a metrics.csv (rows hold different columns: train/*
    and val/* are written apart), read as ``compare`` reads it; {} when there is none or it cannot be read."""
    from gan_lightning.compare import read_metrics  # compare imports this module

    try:
        return {key: series[-1][1] for key, series in sorted(read_metrics(path).items())}
    except GanLightningError:
        return {}
