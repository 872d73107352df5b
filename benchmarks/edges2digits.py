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

import sys

import torch
from cli_runs import known_answer_benchmark, pixel_error

EXPERIMENT = "pix2pix_edges2digits"


@torch.no_grad()
def translation_errors(model, datamodule) -> dict[str, float]:
    """Mean |.| / 2 (data space [-1, 1] -> pixel units) on the evaluation (test) pairs."""
    from gan_lightning.data_io import uint8_to_unit_range

    edges, digits = datamodule.eval_pairs()
    mean_digit = uint8_to_unit_range(datamodule.pairs["train"][1]).mean(0, keepdim=True)

    return {"g_error": pixel_error(model.translate(edges).cpu(), digits), "edges_error": pixel_error(edges, digits),
            "mean_digit_error": pixel_error(mean_digit.expand_as(digits), digits)}


if __name__ == "__main__":
    from datamodules.paired import write_edges2digits

    sys.exit(known_answer_benchmark(__doc__, EXPERIMENT, translation_errors, [
        ("g_error", "G(edges) vs digit"), ("edges_error", "edges vs digit"),
        ("mean_digit_error", "mean training digit vs digit")],
        write_edges2digits, "train", "edges2digits", "data/edges2digits"))
