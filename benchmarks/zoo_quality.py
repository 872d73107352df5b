"""Sample quality of the MNIST zoo recipes at one training budget: MNIST-FID, IS and digit classes covered.

Each experiment is a normal CLI run (``gan-lightning train EXPERIMENT``) on the real MNIST test split in
``../shared/data`` (offline, 10,000 digits) for ``--steps`` batches, scored at the end by the metrics callback:
5,000 samples of the (EMA) generator through the shipped MNIST classifier (features for FID against the
10,000 real digits, its softmax for IS, and the classes holding >= 1% of the samples). Equal batches, not equal
generator updates: the WGAN recipes take n_critic = 5 critic steps per generator step, so they make 1/5 of the
generator updates here. ``--manifold`` adds precision and recall (k = 3) and density and coverage (k = 5) on the
same features and samples (the FID does not move: the callback scores one set of samples for every metric). Prints
a markdown table and writes it, with every run's scores, to ``<out>/zoo_quality.json``.

    python benchmarks/zoo_quality.py                                  # 6 recipes, 2,000 batches, seed 0
    python benchmarks/zoo_quality.py --experiments wgan_gp_mnist --steps 10000 --jobs 1 --threads 2
    python benchmarks/zoo_quality.py --experiments dcgan_mnist --steps 1500 --manifold   # + precision ... coverage
    python benchmarks/zoo_quality.py --experiments dcgan_mnist stylegan2_mnist --minutes 5   # equal wall time

``--minutes M`` gives every run the same training time instead of the same batches (Lightning's ``max_time``; the
evaluation at the end is not counted in it): the table then reports the batches each recipe reached.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from cli_runs import report, run_all, summary, train_run
from omegaconf import OmegaConf

EXPERIMENTS = ["gan_mnist", "dcgan_mnist", "dcgan_mnist_paper", "cgan_mnist", "wgan_mnist", "wgan_gp_mnist",
               "sngan_mnist"]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MANIFOLD = ("precision", "recall", "density", "coverage")


def run_one(experiment: str, seed: int, args: argparse.Namespace, extra_metrics: tuple[str, ...] = ()) -> dict:
    """Train and score one run; its FID, IS, classes covered and ``extra_metrics`` (names the callback reports
    under the same key)."""
    run_dir = args.out / experiment / f"seed{seed}"
    overrides = [f"data.root={args.data_root}", "data.split=test", "data.download=false", "trainer.accelerator=cpu",
                 "callbacks.metrics.n_samples=5000", "callbacks.metrics.extractor=mnist", *budget_overrides(args),
                 *args.overrides]
    if extra_metrics:
        overrides.append(f"callbacks.metrics.metrics={','.join(('fid', 'is', 'kid', *extra_metrics))}")
    seconds = train_run(experiment, seed, run_dir, overrides, threads=args.threads)
    final_scores = sorted((run_dir / "metrics").glob("step_*.json"))[-1]
    final = json.loads(final_scores.read_text())
    batches = int(final_scores.stem.removeprefix("step_"))  # the step the end-of-run evaluation scored
    # the resolved config the run saved: overrides and the variant's defaults included; G steps on every
    # n_critic-th batch
    n_critic = OmegaConf.load(run_dir / "config.yaml").model.n_critic
    return {"experiment": experiment, "seed": seed, "seconds": seconds, "batches": batches,
            "g_steps": batches // n_critic,
            **{k: final[k] for k in ("fid", "is", "classes_covered", *extra_metrics)}}


def budget_overrides(args: argparse.Namespace) -> list[str]:
    """Equal batches (``--steps``), or with ``--minutes`` equal training time: no batch limit, one evaluation at the
    end (the periodic callbacks also run at train end)."""
    if args.minutes is None:
        return [f"trainer.max_steps={args.steps}", f"callbacks.metrics.every_n_steps={args.steps}"]
    minutes, seconds = divmod(round(args.minutes * 60), 60)
    hours, minutes = divmod(minutes, 60)
    unlimited = 10**9
    return [f"trainer.max_time=00:{hours:02d}:{minutes:02d}:{seconds:02d}", f"trainer.max_steps={unlimited}",
            f"callbacks.metrics.every_n_steps={unlimited}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="dotlist applied to every run")
    parser.add_argument("--experiments", nargs="+", default=EXPERIMENTS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])  # mean ± std: one seed varies up to 2x
    parser.add_argument("--steps", type=int, default=2000, help="training batches per run")
    parser.add_argument("--minutes", type=float, help="equal training time per run instead of --steps batches")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    parser.add_argument("--data-root", type=Path, default=SHARED_DATA)
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark_zoo_quality"))
    parser.add_argument("--manifold", action="store_true",
                        help="also precision/recall (k = 3) and density/coverage (k = 5)")
    args = parser.parse_args()
    extra = MANIFOLD if args.manifold else ()
    if not (args.data_root / "MNIST" / "raw").is_dir():
        print(f"error: no MNIST/raw under {args.data_root}; pass --data-root (the folder holding MNIST/raw)",
              file=sys.stderr)
        return 2
    results = run_all(args.experiments, args.seeds, args.jobs,
                      lambda experiment, seed: run_one(experiment, seed, args, extra))

    def row(runs: list[dict]) -> list[str]:
        return [summary([r["batches"] for r in runs], 0), summary([r["g_steps"] for r in runs], 0),
                summary([r["fid"] for r in runs], 2), summary([r["is"] for r in runs], 2),
                f"{summary([r['classes_covered'] for r in runs])} / 10",
                *(summary([r[key] for r in runs], 3) for key in extra),
                f"{statistics.fmean(r['seconds'] for r in runs):.0f}"]

    header = ["batches", "G steps", "MNIST-FID", "IS", "classes covered", *extra, "seconds/run"]
    report(results, args.experiments, header, row, args.out / "zoo_quality.json",
           steps=args.steps if args.minutes is None else None,
           minutes=args.minutes, overrides=args.overrides, seeds=args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
