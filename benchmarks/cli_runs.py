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


def known_answer_benchmark(doc: str, experiment: str, errors: Callable[[Any, Any], dict[str, float]],
                           columns: list[tuple[str, str]], write_task: Callable[[Path], None], task_marker: str,
                           name: str, data_root: str, default_jobs: int = 1) -> int:
    """The main of a translation benchmark with a known answer: train ``experiment`` for each seed through the CLI
    (on a task ``write_task`` writes once under --data-root, default ``data_root``, unless ``task_marker`` is there
    already), score each run's last
    checkpoint with ``errors(model, datamodule)``, and report ``columns`` ((key of errors, title)) as mean ± std,
    with the seconds per run, to stdout and ``<out>/<name>.json``."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="dotlist applied to every run")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None, help="training batches (default: the experiment's)")
    parser.add_argument("--jobs", type=int, default=default_jobs, help="runs in parallel")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    parser.add_argument("--data-root", type=Path, default=Path(data_root))
    parser.add_argument("--out", type=Path, default=Path(f"runs/benchmark_{name}"))
    args = parser.parse_args()
    steps = [f"trainer.max_steps={args.steps}"] if args.steps else []
    if not (args.data_root / task_marker).is_dir():  # written once, before parallel runs could race to write it
        write_task(args.data_root)

    def run_one(experiment: str, seed: int) -> dict:
        run_dir = args.out / f"seed{seed}"
        seconds = train_run(experiment, seed, run_dir, [f"data.root={args.data_root}", *steps, *args.overrides],
                            threads=args.threads)
        return {"experiment": experiment, "seed": seed, "seconds": seconds,
                **score_run(run_dir, args.data_root, errors)}

    results = run_all([experiment], args.seeds, args.jobs, run_one)

    def row(runs: list[dict]) -> list[str]:
        return [summary([r[key] for r in runs], 3) for key, _ in columns] + [
            f"{statistics.fmean(r['seconds'] for r in runs):.0f}"]

    report(results, [experiment], [title for _, title in columns] + ["seconds/run"], row,
           args.out / f"{name}.json", steps=args.steps, seeds=args.seeds, overrides=args.overrides)
    return 0


def score_run(run_dir: Path, data_root: Path, errors: Callable[[Any, Any], dict[str, float]]) -> dict[str, float]:
    """``errors(model, datamodule)`` for the last checkpoint of ``run_dir``, its data read from ``data_root``."""
    return errors(*model_and_data(run_dir / "checkpoints" / "last.ckpt", {"root": str(data_root)}))


def model_and_data(checkpoint: Path, data: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """The model of ``checkpoint`` and the datamodule of the experiment it was trained with, ``data``
    keys overriding its ``data`` section (e.g. where its files lie on this machine)."""
    from omegaconf import OmegaConf

    from gan_lightning.config import validate
    from gan_lightning.loading import load_model
    from gan_lightning.train import build_datamodule

    model = load_model(checkpoint)
    config = OmegaConf.merge(OmegaConf.create(model.hparams["experiment"]), {"data": data or {}})
    return model, build_datamodule(validate(config))


def pixel_error(x: Any, y: Any) -> float:
    """Mean absolute difference of two image batches in data space [-1, 1], in [0, 1] pixel units."""
    return float((x - y).abs().mean() / 2)
