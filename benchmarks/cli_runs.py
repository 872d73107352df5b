"""What the benchmark scripts share: one CLI training run per process, and mean ± std summaries."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def train_run(experiment: str, seed: int, run_dir: Path, overrides: list[str], threads: int = 1) -> float:
    """``gan-lightning train EXPERIMENT`` into a fresh ``run_dir`` with ``threads`` CPU threads (so parallel runs
    do not oversubscribe the cores); returns the wall seconds. Raises with the run's stderr tail on failure."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    command = [sys.executable, "-m", "gan_lightning", "train", experiment, f"run.seed={seed}", f"run.dir={run_dir}",
               "run.quiet=true", "logger.csv=true", *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.time()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{experiment} seed {seed} failed:\n{result.stderr[-2000:]}")
    return time.time() - start


def summary(values: list[float], digits: int = 1) -> str:
    """'mean ± std' over seeds (std 0 for a single value)."""
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"
