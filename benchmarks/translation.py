"""CycleGAN on a translation task with a known answer, offline: how close do G and F get to the true mapping?

``cyclegan_digits_invert``: A = MNIST digits, B = other digits colour-inverted, both written in the CycleGAN
folder layout (the same code path as horse2zebra). The true G: A -> B is T(a) = 255 - a, and F = T^-1 = T. Each
seed trains the experiment through the CLI for ``--steps`` batches, then on the 500 held-out test digits of each
domain reports the mean absolute error, in [0, 1] pixel units, of G(a) against T(a), of F(b) against T(b), of
the cycle F(G(a)) against a, and of the identity map (a against T(a): what an untrained translator scores).
Prints a markdown table (mean ± std over seeds) and writes it with every run's numbers to
``<out>/translation.json``.

    python benchmarks/translation.py --seeds 0 1 2 --jobs 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from cli_runs import report, run_all, summary, train_run
from omegaconf import OmegaConf

EXPERIMENT = "cyclegan_digits_invert"


@torch.no_grad()
def translation_errors(model, datamodule) -> dict[str, float]:
    """Mean |.| / 2 (data space [-1, 1] -> pixel units) on the test sets; T is colour inversion, x -> -x."""
    from datamodules.unpaired import invert

    a, b = datamodule.test_images("A"), datamodule.test_images("B")
    g_a, f_b = model.translate(a, "AtoB").cpu(), model.translate(b, "BtoA").cpu()
    cycle = model.translate(g_a, "BtoA").cpu()

    def error(x: torch.Tensor, y: torch.Tensor) -> float:
        return float((x - y).abs().mean() / 2)

    return {"g_error": error(g_a, invert(a)), "f_error": error(f_b, invert(b)), "cycle_error": error(cycle, a),
            "identity_error_a": error(a, invert(a)), "identity_error_b": error(b, invert(b))}


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
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    parser.add_argument("--data-root", type=Path, default=Path("data/digits_invert"))
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark_translation"))
    args = parser.parse_args()
    steps = [f"trainer.max_steps={args.steps}"] if args.steps else []
    if not (args.data_root / "trainA").is_dir():  # written once, before parallel runs could race to write it
        from datamodules.unpaired import write_digits_invert

        write_digits_invert(args.data_root)

    def run_one(experiment: str, seed: int) -> dict:
        run_dir = args.out / f"seed{seed}"
        seconds = train_run(experiment, seed, run_dir, [f"data.root={args.data_root}", *steps, *args.overrides],
                            threads=args.threads)
        return {"experiment": experiment, "seed": seed, "seconds": seconds, **evaluate_run(run_dir, args.data_root)}

    results = run_all([EXPERIMENT], args.seeds, args.jobs, run_one)

    def row(runs: list[dict]) -> list[str]:
        return [summary([r[key] for r in runs], 3) for key in ("g_error", "identity_error_a", "f_error",
                                                               "identity_error_b", "cycle_error")] + [
            f"{statistics.fmean(r['seconds'] for r in runs):.0f}"]

    report(results, [EXPERIMENT], ["G(a) vs T(a)", "identity: a vs T(a)", "F(b) vs T(b)", "identity: b vs T(b)",
                                   "cycle F(G(a)) vs a", "seconds/run"], row, args.out / "translation.json",
           steps=args.steps, seeds=args.seeds, overrides=args.overrides)
    return 0


if __name__ == "__main__":
    sys.exit(main())
