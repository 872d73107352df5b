"""SRResNet, SRGAN and ESRGAN against bicubic on the offline super-resolution tasks, over seeds: PSNR/SSIM on the
held-out images and the crops that show the perception-distortion trade-off.

For each task (``digits``: 7 -> 28 px MNIST digits, 500 held out; ``photos``: scikit-image photographs, tested on
chelsea, coffee and gravel) and seed, the papers' two chains run through the CLI, each stage at its experiment's
schedule:

- ``srresnet_<task>`` (PSNR-oriented, pixel MSE), then ``srgan_<task>`` initialised from it;
- the ESRGAN PSNR stage (``srresnet_<task>`` with the RRDB generator and an L1 pixel loss, as ``esrgan_<task>.yaml``
  says), then ``esrgan_<task>`` initialised from it, and ESRGAN's network interpolation of the two
  (``gan-lightning interpolate --alpha 0.8``).

Every checkpoint is scored as ``gan-lightning evaluate`` scores it (whole test images, PSNR/SSIM on Y with ``scale``
border pixels cropped, and on RGB), next to bicubic (MATLAB imresize) of the same LR images. Prints one markdown table
per task (mean ± std over seeds) and writes it with every run's scores to ``<out>/superres_quality.json``; with
``--crops`` also writes, for the first seed, one figure per test photograph: the same crop of LR (nearest),
bicubic, every model's output and HR, side by side.

    python benchmarks/superres_quality.py --tasks digits photos --seeds 0 1 2 --jobs 2 --crops docs/figures
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from cli_runs import model_and_data, run_all, summary, train_run

# (row, experiment, extra overrides, the row whose checkpoint the stage starts from); {task} filled per task
STAGES = (
    ("srresnet", "srresnet_{task}", [], None),
    ("srgan", "srgan_{task}", [], "srresnet"),
    ("rrdb_psnr", "srresnet_{task}", ["model.generator=rrdb", "model.n_blocks=3", "model.growth=16",
                                      "model.pixel_criterion=l1"], None),
    ("esrgan", "esrgan_{task}", [], "rrdb_psnr"),
)
INTERPOLATION = ("esrgan_interp_0.8", "rrdb_psnr", "esrgan", 0.8)
ROWS = [stage[0] for stage in STAGES] + [INTERPOLATION[0]]
METRICS = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")


def checkpoint(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "last.ckpt"


def score(path: Path) -> dict[str, Any]:
    """``gan-lightning evaluate``'s super-resolution scores of a checkpoint: {test set: {metric: value, "bicubic"}}."""
    model, datamodule = model_and_data(path)
    return model.eval().evaluate_test_sets(datamodule)


def stage_checkpoint(base: Path, row: str) -> Path:
    """Where a row's checkpoint lies in a task and seed's folder: a trained stage's last.ckpt, or the interpolation."""
    return base / f"{row}.ckpt" if row == INTERPOLATION[0] else checkpoint(base / row)


def run_chain(task: str, seed: int, out: Path, threads: int, steps: int | None) -> dict[str, Any]:
    """Both chains for one task and seed; returns {row: scores} and the seconds of each training stage."""
    from gan_lightning.superres_io import interpolate_checkpoints

    base = out / task / f"seed{seed}"
    scores, seconds = {}, {}
    for row, experiment, overrides, start in STAGES:
        run_dir = base / row
        extra = [f"model.init_from={checkpoint(base / start)}"] if start else []
        extra += [f"trainer.max_steps={steps}"] if steps else []
        # written when the stage ends: a rerun skips finished stages (and still reports their time) and redoes
        # one that was cut short (its periodic last.ckpt is not the end of its schedule)
        timing = run_dir / "train_seconds.txt"
        if not timing.is_file():
            timing_value = train_run(experiment.format(task=task), seed, run_dir, [*overrides, *extra], threads)
            timing.write_text(f"{timing_value:.1f}\n")
        seconds[row] = float(timing.read_text())
        scores[row] = score(checkpoint(run_dir))
    row, first, second, alpha = INTERPOLATION
    mixed = stage_checkpoint(base, row)
    if not mixed.is_file():
        interpolate_checkpoints(checkpoint(base / first), checkpoint(base / second), alpha, mixed)
    scores[row] = score(mixed)
    return {"experiment": task, "seed": seed, "seconds": seconds, "scores": scores}


def table(runs: list[dict[str, Any]]) -> str:
    """One task's markdown table: bicubic and every row, mean ± std over the seeds, per test set."""
    lines = ["| test set | model | PSNR-Y (dB) | SSIM-Y | PSNR-RGB (dB) | SSIM-RGB | PSNR-Y over bicubic (dB) |",
             "|---|---|---|---|---|---|---|"]
    for test_set in runs[0]["scores"]["srresnet"]:
        bicubic = runs[0]["scores"]["srresnet"][test_set]["bicubic"]  # the same LR images whatever the seed
        lines.append(f"| {test_set} | bicubic | " + " | ".join(f"{bicubic[m]:.{2 if 'psnr' in m else 4}f}"
                                                               for m in METRICS) + " | 0 |")
        for row in ROWS:
            values = {m: [run["scores"][row][test_set][m] for run in runs] for m in METRICS}
            gains = [value - bicubic["psnr_y"] for value in values["psnr_y"]]
            lines.append(f"| {test_set} | {row} | " + " | ".join(summary(values[m], 2 if "psnr" in m else 4)
                                                                for m in METRICS) + f" | {summary(gains, 2)} |")
    return "\n".join(lines)


def crop_figures(out: Path, task: str, seed: int, figures: Path, size: int = 48) -> list[Path]:
    """For each test image of ``task``: a crop (the ``size`` px HR square of most detail) of LR nearest-upsampled,
    bicubic, each model's output and HR, side by side, written to ``figures/superres_<task>_<image>.png``."""
    import torch
    from PIL import Image

    from datamodules.superres import PHOTOS_TEST
    from gan_lightning.loading import load_model
    from gan_lightning.superres_eval import bicubic_upscale

    base = out / task / f"seed{seed}"
    first, datamodule = model_and_data(stage_checkpoint(base, "srresnet"))
    models = {"srresnet": first.eval(), **{row: load_model(stage_checkpoint(base, row)).eval()
                                           for row in ("srgan", "esrgan", INTERPOLATION[0])}}
    scale = first.scale
    written = []
    for test_set, pairs in datamodule.test_sets().items():
        names = PHOTOS_TEST if test_set == "photos_test" else None
        for index, (lr, hr) in enumerate(pairs[:3]):
            size = min(size, *hr.shape[-2:])
            # the crop with the most high-frequency detail: where the models differ most from bicubic
            detail = (hr - bicubic_upscale(lr, scale)).abs().mean(dim=1, keepdim=True)
            pooled = torch.nn.functional.avg_pool2d(detail, size, stride=size // 2)
            top, left = divmod(int(pooled.flatten().argmax()), pooled.shape[-1])
            top, left = top * (size // 2), left * (size // 2)
            panels = [torch.nn.functional.interpolate(lr, scale_factor=scale, mode="nearest"),
                      bicubic_upscale(lr, scale), *(model.upscale(lr).cpu() for model in models.values()), hr]
            crops = [panel[0, :, top : top + size, left : left + size] for panel in panels]
            gap = torch.ones(crops[0].shape[0], size, 2)
            strip = torch.cat([piece for crop in crops for piece in (crop, gap)][:-1], dim=2)
            pixels = ((strip.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).squeeze(-1).numpy()
            name = names[index] if names else f"{index:02d}"
            path = figures / f"superres_{task}_{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).resize((pixels.shape[1] * 3, pixels.shape[0] * 3), Image.NEAREST).save(path)
            written.append(path)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["digits", "photos"], choices=["digits", "photos"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None, help="batches per stage (default: each experiment's)")
    parser.add_argument("--jobs", type=int, default=1, help="chains in parallel")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark_superres_quality"))
    parser.add_argument("--crops", type=Path, default=None, help="folder for the crop figures (first seed)")
    args = parser.parse_args()
    results = run_all(args.tasks, args.seeds, args.jobs,
                      lambda task, seed: run_chain(task, seed, args.out, args.threads, args.steps))
    tables = {}
    for task in args.tasks:
        runs = [r for r in results if r["experiment"] == task]
        seconds = {row: statistics.fmean(r["seconds"][row] for r in runs) for row in runs[0]["seconds"]}
        tables[task] = table(runs)
        print(f"## {task} (seeds {', '.join(map(str, args.seeds))}; mean seconds per stage: "
              + ", ".join(f"{row} {value:.0f}" for row, value in seconds.items()) + ")")
        print(tables[task])
        if args.crops:
            for path in crop_figures(args.out, task, args.seeds[0], args.crops):
                print(f"crop figure: {path}")
    (args.out / "superres_quality.json").write_text(json.dumps(
        {"seeds": args.seeds, "steps": args.steps, "threads": args.threads, "tables": tables, "runs": results},
        indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
