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

import sys
from pathlib import Path

import torch
from cli_runs import known_answer_benchmark, pixel_error, score_run

EXPERIMENT = "cyclegan_digits_invert"


@torch.no_grad()
def translation_errors(model, datamodule) -> dict[str, float]:
    """Mean |.| / 2 (data space [-1, 1] -> pixel units) on the test sets; T is colour inversion, x -> -x."""
    from datamodules.unpaired import invert

    a, b = datamodule.test_images("A"), datamodule.test_images("B")
    g_a, f_b = model.translate(a, "AtoB").cpu(), model.translate(b, "BtoA").cpu()
    cycle = model.translate(g_a, "BtoA").cpu()

    return {"g_error": pixel_error(g_a, invert(a)), "f_error": pixel_error(f_b, invert(b)),
            "cycle_error": pixel_error(cycle, a), "identity_error_a": pixel_error(a, invert(a)),
            "identity_error_b": pixel_error(b, invert(b))}


def evaluate_run(run_dir: Path, data_root: Path) -> dict[str, float]:
    return score_run(run_dir, data_root, translation_errors)


if __name__ == "__main__":
    from datamodules.unpaired import write_digits_invert

    sys.exit(known_answer_benchmark(__doc__, EXPERIMENT, translation_errors, [
        ("g_error", "G(a) vs T(a)"), ("identity_error_a", "identity: a vs T(a)"), ("f_error", "F(b) vs T(b)"),
        ("identity_error_b", "identity: b vs T(b)"), ("cycle_error", "cycle F(G(a)) vs a")],
        write_digits_invert, "trainA", "translation", "data/digits_invert", default_jobs=2))
