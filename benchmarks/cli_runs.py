"""What the benchmark scripts share: CLI training runs, one per process, and their mean ± std table."""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def train_run(experiment: str, seed: int, run_dir: Path, overrides: list[str], threads: int = 1) -> float:
    """``gan-lightning train EXPERIMENT`` into a fresh ``run_dir`` with ``threads`` CPU threads (so parallel runs
    do not oversubscribe the cores); returns the wall seconds. Raises with the run's stderr tail on failure."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    command = [sys.executable, "-m", "gan_lightning", "train", experiment, f"run.seed={seed}", f"run.dir={run_dir}",
               "run.quiet=true", "logger.csv=true", *overrides]
    return timed_process(command, threads, f"{experiment} seed {seed}")


def timed_process(command: list[str], threads: int, what: str) -> float:
    """Run ``command`` with ``threads`` CPU threads; returns its wall seconds. Raises, naming ``what`` and with the
    stderr tail, on failure."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.time()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{result.stderr[-2000:]}")
    return time.time() - start


def summary(values: list[float], digits: int = 1) -> str:
    """'mean ± std' over seeds (std 0 for a single value). NaNs (a metric with nothing to measure, e.g. the
    spread of a run with no high-quality sample) are left out and counted: '1.20 ± 0.10 (3 of 5)'."""
    measured = [v for v in values if not math.isnan(v)]
    if not measured:
        return "n/a"
    mean = statistics.fmean(measured)
    spread = statistics.stdev(measured) if len(measured) > 1 else 0.0
    text = f"{mean:.{digits}f} ± {spread:.{digits}f}"
    return text if len(measured) == len(values) else f"{text} ({len(measured)} of {len(values)})"


def run_all(experiments: list[str], seeds: list[int], jobs: int,
            run_one: Callable[[str, int], dict[str, Any]]) -> list[dict[str, Any]]:
    """``run_one(experiment, seed)`` for every pair, ``jobs`` at a time, in order."""
    pairs = [(experiment, seed) for experiment in experiments for seed in seeds]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda pair: run_one(*pair), pairs))


def report(results: list[dict[str, Any]], experiments: list[str], header: list[str],
           row: Callable[[list[dict[str, Any]]], list[str]], path: Path, **settings: Any) -> str:
    """A markdown table, one row per experiment (``row`` turns its runs into the cells after the name); printed,
    and written to ``path`` as JSON with ``settings`` and every run's numbers. Returns the table."""
    lines = ["| " + " | ".join(["experiment", *header]) + " |", "|" + "---|" * (len(header) + 1)]
    for experiment in experiments:
        lines.append("| " + " | ".join([experiment, *row([r for r in results if r["experiment"] == experiment])])
                     + " |")
    table = "\n".join(lines)
    print(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**settings, "table": table, "runs": results}, indent=1))
    return table
