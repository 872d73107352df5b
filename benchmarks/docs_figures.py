"""The docs gallery: train each family's shipped offline recipe through the CLI and write one figure per family into
docs/figures/, then docs/gallery.md with the command that made each figure, its date, the hardware and the run's
scores.

Families and their figures:
- dcgan (dcgan_digits), stylegan2 (stylegan2_digits): `gan-lightning sample` grid of 64 (seed 0, EMA G where the
  recipe keeps one);
- gmgan (gmgan_ring): `gan-lightning sample` of 2,000 points over the ring's 8 mode centres;
- cyclegan (cyclegan_digits_invert), pix2pix (pix2pix_edges2digits): rows input | output | target of the first 8
  held-out test images, the outputs from `gan-lightning translate`; the score is the mean absolute pixel error of the
  translation over the whole test folder against the known answer (255 - digit; the true digit);
- srresnet (srresnet_digits): rows LR (nearest x4) | SR | HR of the first 8 held-out test digits, SR from
  `gan-lightning upscale`; the scores are `gan-lightning evaluate`'s PSNR/SSIM against bicubic.

StyleGAN2 also gets the truncation (psi 0.7) and style-mixing (coarse, fine) figures of the same checkpoint. Every
run uses the recipe's defaults; ``--steps FAMILY=N`` shortens one (the gallery then says so). Runs, data and
intermediate images go under ``--work``; each family's record (command, date, hardware, seconds, scores) is kept in
docs/figures/gallery.json, so ``--only`` re-makes some families and keeps the others' entries, and ``--reuse``
re-makes figures from the runs already in ``--work`` without training.

    OMP_NUM_THREADS=1 python benchmarks/docs_figures.py [--only dcgan stylegan2] [--steps stylegan2=1000] [--work DIR]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
FIGURE_SCALE = 2  # nearest-neighbour upscaling of the 28-32 px digit rows, so they read on a page
ROW_IMAGES = 8  # test images per row of a translation / super-resolution figure


@dataclass(frozen=True)
class Family:
    experiment: str
    figure: str  # latent | points | translation | superres
    title: str
    # more `gan-lightning sample` figures of the same checkpoint: (name, what it shows, sample options)
    extra_figures: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    sample_options: tuple[str, ...] = ()  # added to the main figure's `sample` (e.g. fixed noise maps)


STYLEGAN2_FIGURES = (
    ("truncation", "the same 64 latents truncated toward w_avg, psi 0.7",
     ("--n", "64", "--nrow", "8", "--seed", "0", "--truncation", "0.7", "--noise", "const")),
    ("style_mix_coarse", "style mixing: the row sources' coarse styles (ws 0-3, 4-8 px) over the column sources",
     ("--style-mix", "4", "6", "--mix-layers", "coarse", "--seed", "0")),
    ("style_mix_fine", "style mixing: the row sources' fine styles (ws 6-7, 32 px) over the column sources",
     ("--style-mix", "4", "6", "--mix-layers", "fine", "--seed", "0")),
)


FAMILIES = {
    "dcgan": Family("dcgan_digits", "latent", "DCGAN on the 5,000 embedded digits"),
    "gmgan": Family("gmgan_ring", "points", "GM-GAN on the ring of 8 Gaussians"),
    "cyclegan": Family("cyclegan_digits_invert", "translation", "CycleGAN: digits -> inverted digits (A to B)"),
    "pix2pix": Family("pix2pix_edges2digits", "translation", "pix2pix: digit outlines -> digits"),
    # const noise: the per-layer noise maps stored in the checkpoint, so the figure is the same at every run of `sample`
    "stylegan2": Family("stylegan2_digits", "latent", "StyleGAN2 on the 5,000 embedded digits", STYLEGAN2_FIGURES,
                        ("--noise", "const")),
    "srresnet": Family("srresnet_digits", "superres", "SRResNet: 7 px -> 28 px digits (x4)"),
}


def cli(*args: str) -> tuple[str, str]:
    """``gan-lightning ARGS`` in a subprocess (this checkout's package first on the path): (stdout, display)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "gan_lightning", *args]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"error: gan-lightning {' '.join(args)} failed ({result.returncode}):\n"
                         f"{result.stderr[-2000:]}")
    return result.stdout, "gan-lightning " + shlex.join(args)


def read_grey(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=np.uint8)


def save_rows(rows: list[list[np.ndarray]], path: Path) -> None:
    """Rows of equal-sized grey images as one PNG: 2 px white gaps, every image upscaled FIGURE_SCALE x."""
    height, width = rows[0][0].shape
    gap = 2
    canvas = np.full((len(rows) * (height + gap) - gap, len(rows[0]) * (width + gap) - gap), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            top, left = r * (height + gap), c * (width + gap)
            canvas[top : top + height, left : left + width] = image
    Image.fromarray(canvas).resize((canvas.shape[1] * FIGURE_SCALE, canvas.shape[0] * FIGURE_SCALE),
                                   Image.NEAREST).save(path, optimize=True)


def mean_abs_error(outputs: Path, targets: dict[str, np.ndarray]) -> float:
    """Mean |output - target| over every pixel of every image, in [0, 1] pixel units."""
    errors = [np.abs(read_grey(outputs / name).astype(np.float64) - target).mean() / 255 for name, target
              in sorted(targets.items())]
    return float(np.mean(errors))


def translation_figure(family: Family, run: Path, data_root: Path, work: Path, figure: Path) -> dict[str, object]:
    """Translate the whole held-out test folder with `gan-lightning translate`; the figure shows the first 8."""
    inputs, targets = work / "inputs", {}
    inputs.mkdir(parents=True, exist_ok=True)
    if family.experiment == "cyclegan_digits_invert":
        for path in sorted((data_root / "testA").glob("*.png")):
            digit = read_grey(path)
            Image.fromarray(digit).save(inputs / path.name)
            targets[path.name] = 255.0 - digit.astype(np.float64)  # the known answer: the inverted digit
    else:  # pix2pix: side-by-side test pairs, A (outline) | B (digit)
        for path in sorted((data_root / "test").glob("*.png")):
            pair = read_grey(path)
            half = pair.shape[1] // 2
            Image.fromarray(pair[:, :half]).save(inputs / path.name)
            targets[path.name] = pair[:, half:].astype(np.float64)
    outputs = work / "outputs"
    _, command = cli("translate", str(run / "checkpoints" / "last.ckpt"), "--input", str(inputs), "--out",
                     str(outputs))
    shown = sorted(targets)[:ROW_IMAGES]
    save_rows([[read_grey(inputs / n) for n in shown], [read_grey(outputs / n) for n in shown],
               [targets[n].astype(np.uint8) for n in shown]], figure)
    return {"figure_command": command, "rows": "input | output | target",
            "scores": {"test_images": len(targets), "mean_abs_error": round(mean_abs_error(outputs, targets), 4)}}


def superres_figure(family: Family, run: Path, work: Path, figure: Path) -> dict[str, object]:
    """Upscale the first 8 held-out LR test digits with `gan-lightning upscale`; PSNR/SSIM from `evaluate`."""
    from omegaconf import OmegaConf

    sys.path.insert(0, str(REPO))
    from datamodules.superres import SuperResDataModule

    datamodule = SuperResDataModule(OmegaConf.load(run / "config.yaml").data)
    (name, pairs), = ((n, p) for n, p in datamodule.test_sets().items() if n.endswith("_test"))
    inputs = work / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    to_uint8 = lambda x: ((x[0, 0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()  # noqa: E731
    highs = {}
    for index, (lr, hr) in enumerate(pairs[:ROW_IMAGES]):
        Image.fromarray(to_uint8(lr)).save(inputs / f"{index:02d}.png")
        highs[f"{index:02d}.png"] = to_uint8(hr)
    outputs = work / "outputs"
    _, command = cli("upscale", str(run / "checkpoints" / "last.ckpt"), "--input", str(inputs), "--out", str(outputs))
    scale = datamodule.scale
    shown = sorted(highs)
    save_rows([[read_grey(inputs / n).repeat(scale, 0).repeat(scale, 1) for n in shown],
               [read_grey(outputs / n) for n in shown], [highs[n] for n in shown]], figure)
    report, _ = cli("evaluate", str(run / "checkpoints" / "last.ckpt"))
    measured = json.loads(report)[name]
    scores = {"test_images": measured["images"], **{key: round(measured[key], 4) for key in ("psnr_y", "ssim_y")},
              **{f"bicubic_{key}": round(measured["bicubic"][key], 4) for key in ("psnr_y", "ssim_y")}}
    return {"figure_command": command, "rows": "LR (nearest x4) | SR | HR", "scores": scores}


def make_family(key: str, steps: int | None, work: Path, figures: Path,
                previous: dict[str, object] | None = None) -> dict[str, object]:
    """Train the family's recipe (or, with ``previous``, the record of a finished run in ``work``, reuse its run) and
    make its figures."""
    family = FAMILIES[key]
    run, data_root = work / "runs" / family.experiment, work / "data" / family.experiment
    checkpoint = str(run / "checkpoints" / "last.ckpt")
    if previous is not None:
        if not Path(checkpoint).is_file() or previous.get("steps") != steps:
            raise SystemExit(f"error: --reuse: {checkpoint} is missing or was trained for other steps")
        train_command, seconds = str(previous["train_command"]), float(previous["train_seconds"])
        stdout = str(previous.get("train_scores") or "")
    else:
        overrides = [f"run.dir={run}"]
        if family.figure == "translation":
            overrides.append(f"data.root={data_root}")  # the offline writer makes the dataset there
        if steps is not None:
            overrides.append(f"trainer.max_steps={steps}")
        if run.exists():
            raise SystemExit(f"error: {run} exists; choose another --work (runs are never overwritten) or --reuse")
        start = time.perf_counter()
        stdout, train_command = cli("train", family.experiment, *overrides)
        seconds = time.perf_counter() - start
    figure = figures / f"{key}.png"
    if family.figure == "latent":
        _, command = cli("sample", checkpoint, "--n", "64", "--nrow", "8", "--seed", "0", *family.sample_options,
                         "--out", str(figure))
        extra = {"figure_command": command}
    elif family.figure == "points":
        _, command = cli("sample", checkpoint, "--n", "2000", "--seed", "0", "--out", str(figure))
        modes = sorted((run / "modes").glob("step_*.json"))
        extra = {"figure_command": command, "scores": json.loads(modes[-1].read_text()) if modes else {}}
    elif family.figure == "translation":
        extra = translation_figure(family, run, data_root, work / "figure" / key, figure)
    else:
        extra = superres_figure(family, run, work / "figure" / key, figure)
    extra["more_figures"] = []
    for name, what, options in family.extra_figures:
        path = figures / f"{key}_{name}.png"
        _, command = cli("sample", checkpoint, *options, "--out", str(path))
        extra["more_figures"].append({"figure": path.name, "what": what, "command": repo_relative(command, work)})
    # the scores part of train's last line ("finished: ...; scores at batch N (...): fid ..; samples ...")
    train_lines = [line[line.index("scores at batch"):].split("; ")[0] for line in stdout.splitlines()
                   if "scores at batch" in line]
    return {"family": key, "experiment": family.experiment, "title": family.title, "figure": figure.name,
            "train_command": train_command.replace(str(work), "WORK"),
            "figure_command": repo_relative(str(extra.pop("figure_command")), work),
            "steps": steps, "train_seconds": round(seconds), "train_scores": train_lines[-1] if train_lines else None,
            "date": previous["date"] if previous is not None else  # when the run was trained
            datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "hardware": hardware(), "figure_kb": round(figure.stat().st_size / 1024, 1), **extra}


def repo_relative(command: str, work: Path) -> str:
    """A command as the page shows it: the work folder as WORK, this checkout's paths relative to it."""
    return command.replace(str(work), "WORK").replace(str(REPO) + "/", "")


def hardware() -> str:
    return (f"{platform.machine()} CPU, {os.cpu_count()} cores (shared with other jobs), {torch.get_num_threads()} "
            f"torch threads, torch {torch.__version__}")


def scores_text(record: dict[str, object]) -> str:
    scores = record.get("scores")
    parts = []
    if record.get("train_scores"):
        parts.append(str(record["train_scores"]).removeprefix("scores ").split(" (/")[0].split(" (WORK")[0])
    if isinstance(scores, dict) and scores:
        shown = {k: v for k, v in scores.items() if isinstance(v, (int, float, str)) and k != "step"}
        parts.append(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()))
    return "; ".join(parts) or "none recorded"


def write_gallery(records: dict[str, dict[str, object]], path: Path) -> None:
    lines = ["# Gallery", "",
             "One figure per model family, each from the family's shipped offline recipe trained through the CLI by",
             "`python benchmarks/docs_figures.py` (nothing hand-made; `--only FAMILY` re-makes one). `WORK` is the",
             "script's `--work` folder. Scores are those of the run shown (one seed, seed 0 of the recipe):",
             "- digits (dcgan, stylegan2): the run's final evaluation, FID/IS/KID on the shipped MNIST classifier's",
             "  features (MNIST-FID, not comparable with Inception FIDs) and the classes its samples cover;",
             "- ring: the mode metrics (modes captured of 8, % of samples within 3 std of a mode, spread ratio);",
             "- translation: mean absolute pixel error, in [0, 1] units, of `translate`'s outputs over the whole",
             "  held-out test folder against the known answer (the inverted digit; the true digit of an outline);",
             "- super-resolution: `gan-lightning evaluate`'s PSNR/SSIM on Y over the 500 held-out test digits, next",
             "  to bicubic upsampling.", ""]
    for key in FAMILIES:
        record = records.get(key)
        if record is None:
            lines += [f"## {FAMILIES[key].title}", "", "Not made yet.", ""]
            continue
        schedule = (f"a shortened schedule, `trainer.max_steps={record['steps']}` (the recipe's own is longer)"
                    if record["steps"] is not None else "the recipe's default schedule")
        lines += [f"## {record['title']}", "", f"![{record['experiment']}](figures/{record['figure']})", "",
                  f"- experiment `{record['experiment']}`, {schedule}; trained in {record['train_seconds']} s (wall "
                  "time on the shared machine)",
                  f"- train: `{record['train_command']}`", f"- figure: `{record['figure_command']}`"
                  + (f" (rows: {record['rows']})" if record.get("rows") else ""),
                  f"- scores: {scores_text(record)}", f"- {record['date']}, {record['hardware']}", ""]
        for more in record.get("more_figures", []):
            lines += [f"{more['what'][0].upper()}{more['what'][1:]} (`{more['command']}`):", "",
                      f"![{more['figure']}](figures/{more['figure']})", ""]
    path.write_text("\n".join(lines))


def parse_steps(values: list[str]) -> dict[str, int]:
    steps = {}
    for value in values:
        key, _, count = value.partition("=")
        if key not in FAMILIES or not count.isdigit() or int(count) < 1:
            raise SystemExit(f"error: --steps {value!r}: expected FAMILY=N with FAMILY in {', '.join(FAMILIES)}")
        steps[key] = int(count)
    return steps


def main(argv: list[str] | None = None, make: Callable[..., dict[str, object]] = make_family) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(FAMILIES), default=list(FAMILIES))
    parser.add_argument("--steps", nargs="*", default=[], help="FAMILY=N: a shorter schedule for that family")
    parser.add_argument("--work", type=Path, default=Path("/tmp/gan_lightning_gallery"))
    parser.add_argument("--docs", type=Path, default=REPO / "docs")
    parser.add_argument("--render", action="store_true", help="only rewrite gallery.md from docs/figures/gallery.json")
    parser.add_argument("--reuse", action="store_true",
                        help="remake the figures of runs already in --work (recorded in gallery.json), no training")
    args = parser.parse_args(argv)
    steps = parse_steps(args.steps)
    figures = args.docs / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    record_path = figures / "gallery.json"
    records = json.loads(record_path.read_text()) if record_path.is_file() else {}
    write_gallery(records, args.docs / "gallery.md")
    for key in [] if args.render else args.only:
        previous = None
        if args.reuse:
            if key not in records:
                raise SystemExit(f"error: --reuse: no record of {key} in {record_path}")
            previous = records[key]
        records[key] = make(key, steps.get(key), args.work, figures, previous)
        record_path.write_text(json.dumps(records, indent=1) + "\n")  # after each family: a later failure keeps it
        write_gallery(records, args.docs / "gallery.md")
        print(f"{key}: {figures / records[key]['figure']} ({records[key]['figure_kb']} KB), "
              f"{scores_text(records[key])}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
