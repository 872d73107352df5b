"""Mode-collapse benchmark: the toy experiments over 5 seeds, as a table of modes captured / % high quality.

Each run is a normal CLI training run (``gan-lightning train EXPERIMENT run.seed=S ...``) in its own process
with one CPU thread; the numbers are the final evaluation the run wrote into ``<run dir>/modes/`` (2,500
samples of the EMA generator where the recipe has one). Prints a markdown table (mean ± std over seeds) and
writes it, with every run's numbers, to ``<out>/mode_collapse.json``.

    python benchmarks/mode_collapse.py                        # the shipped toy experiments, seeds 0-4
    python benchmarks/mode_collapse.py --experiments gan_grid --seeds 0 1 --jobs 2 model.lr_g=5e-4
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from cli_runs import report, run_all, summary, train_run
from omegaconf import OmegaConf

from datamodules.toy_data import TOY_MIXTURES

EXPERIMENTS = ["gmgan_ring", "gmgan_grid", "pacgan_ring", "pacgan_grid", "gan_ring", "gan_grid", "wgan_gp_ring",
               "wgan_gp_grid"]


def run_one(experiment: str, seed: int, out: Path, overrides: list[str]) -> dict:
    run_dir = out / experiment / f"seed{seed}"
    seconds = train_run(experiment, seed, run_dir, overrides)
    final = sorted((run_dir / "modes").glob("step_*.json"))[-1]
    mode_centres = TOY_MIXTURES[OmegaConf.load(run_dir / "config.yaml").data.mixture][0]()
    return {"experiment": experiment, "seed": seed, "seconds": seconds, "modes_total": len(mode_centres),
            **json.loads(final.read_text())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="dotlist applied to every run (e.g. trainer.max_steps=500)")
    parser.add_argument("--experiments", nargs="+", default=EXPERIMENTS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (each uses one thread)")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark_mode_collapse"))
    args = parser.parse_args()
    results = run_all(args.experiments, args.seeds, args.jobs,
                      lambda experiment, seed: run_one(experiment, seed, args.out, args.overrides))
    for r in results:
        print(f"{r['experiment']:>16} seed {r['seed']}: {r['modes_captured']} modes, {r['modes_captured_1pct']} "
              f">=1%, {r['high_quality_pct']:.1f}% HQ, spread {r['spread_ratio']:.2f}, {r['seconds']:.0f} s",
              file=sys.stderr)

    def row(runs: list[dict]) -> list[str]:
        return [f"{summary([r['modes_captured'] for r in runs])} / {runs[0]['modes_total']}",
                summary([r["modes_captured_1pct"] for r in runs]), summary([r["high_quality_pct"] for r in runs]),
                summary([r["spread_ratio"] for r in runs], digits=2),
                f"{statistics.fmean(r['seconds'] for r in runs):.0f}"]

    report(results, args.experiments, ["modes captured", "modes with >= 1%", "% high quality", "spread ratio",
                                       "seconds/run"], row, args.out / "mode_collapse.json",
           overrides=args.overrides, seeds=args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
