"""Pix2pix on a paired translation task with a known answer, offline: how close does G(edges) get to the digit?

``pix2pix_edges2digits``: A = the outer edge map of a binarised MNIST digit, B = the digit, written side by side (the
same code path as facades). Each seed trains the experiment through the CLI for ``--steps`` batches, then on the 500
held-out test pairs reports the mean absolute error, in [0, 1] pixel units, of G(edges) against the true digits
(G run as the experiment's ``model.inference`` says), next to two trivial answers: the edge map itself, and the mean
training digit (the best constant image under L2, a strong one under L1 on mostly-black digits). Prints a markdown
table (mean ± std over seeds) and writes it with every run's numbers to ``<out>/edges2digits.json``.

    python benchmarks/edges2digits.py --seeds 0 1 2 --jobs 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from cli_runs import report, run_all, summary, train_run
from omegaconf import OmegaConf

EXPERIMENT = "pix2pix_edges2digits"


@torch.no_grad()
def translation_errors(model, datamodule) -> dict[str, float]:
    """Mean |.| / 2 (data space [-1, 1] -> pixel units) on the evaluation (test) pairs."""
    from datamodules.base import uint8_to_unit_range

    edges, digits = datamodule.eval_pairs()
    mean_digit = uint8_to_unit_range(datamodule.pairs["train"][1]).mean(0, keepdim=True)

    def error(x: torch.Tensor, y: torch.Tensor) -> float:
        return float((x - y).abs().mean() / 2)

    return {"g_error": error(model.translate(edges).cpu(), digits), "edges_error": error(edges, digits),
            "mean_digit_error": error(mean_digit.expand_as(digits), digits)}


def evaluate_run(run_dir: Path, data_root: Path) -> dict[str, float]:
    from gan_lightning.config import validate
    from gan_lightning.train import build_datamodule, load_model

    model = load_model(run_dir / "checkpoints" / "last.ckpt")
    experiment = OmegaConf.merge(OmegaConf.create(model.hparams["experiment"]), {"data": {"root": str(data_root)}})
    return translation_errors(model, build_datamodule(validate(experiment)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="dotlist applied to every run")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None, help="training batches (default: the experiment's)")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    parser.add_argument("--data-root", type=Path, default=Path("data/edges2digits"))
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark_edges2digits"))
    args = parser.parse_args()
    steps = [f"trainer.max_steps={args.steps}"] if args.steps else []
    if not (args.data_root / "train").is_dir():  # written once, before parallel runs could race to write it
        from datamodules.paired import write_edges2digits

        write_edges2digits(args.data_root)

    def run_one(experiment: str, seed: int) -> dict:
        run_dir = args.out / f"seed{seed}"
        seconds = train_run(experiment, seed, run_dir, [f"data.root={args.data_root}", *steps, *args.overrides],
                            threads=args.threads)
        return {"experiment": experiment, "seed": seed, "seconds": seconds, **evaluate_run(run_dir, args.data_root)}

    results = run_all([EXPERIMENT], args.seeds, args.jobs, run_one)

    def row(runs: list[dict]) -> list[str]:
        return [summary([r[key] for r in runs], 3) for key in ("g_error", "edges_error", "mean_digit_error")] + [
            f"{statistics.fmean(r['seconds'] for r in runs):.0f}"]

    report(results, [EXPERIMENT], ["G(edges) vs digit", "edges vs digit", "mean training digit vs digit",
                                   "seconds/run"], row, args.out / "edges2digits.json",
           steps=args.steps, seeds=args.seeds, overrides=args.overrides)
    return 0


if __name__ == "__main__":
    sys.exit(main())
