"""``gan-lightning compare RUN_DIR... [--out DIR]``: the offline dashboard, from run directories alone.

A RUN_DIR is a run directory (it holds ``config.yaml``) or a folder of them (a sweep: every run directory below it,
two levels deep at most). Read from each: ``config.yaml``, ``metrics.csv`` (the logged scalars by batch),
``summary.json`` (wall time, written by ``train``) and the last grid under ``samples/``. Written to ``--out``:

- ``compare.csv`` / ``compare.md``: one row per run (variant, dataset, batches, wall time, best FID and its batch,
  final FID / IS / KID and every other registered score a run logged (precision / recall / density / coverage,
  intra-class FID, CAS, PPL ...), classes covered or modes captured, final D and G losses, and the config keys whose
  values differ between the runs); runs that differ only in ``run.seed`` are also summarised as mean +- std per
  group;
- ``fid.png``: val/fid against batches, one line per run; ``losses.png``: train/d_loss and train/g_loss;
  ``manifold.png``: precision / recall / density / coverage, when runs logged them;
- ``--rank-by SCORE`` orders the rows best first by a final score (``recall``, ``coverage``, ``fid``, ``ppl`` ...);
- ``samples.png``: the last sample grid of each run side by side, named.

Everything is read and checked before anything is written, and each file is written to a temporary name and renamed.
A damaged run (a ``config.yaml`` or ``metrics.csv`` that cannot be parsed, a last grid that cannot be decoded) is
skipped with one ``warning:`` line naming it and the others are compared; when no run can be read, that is one
``error:`` line.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from gan_lightning.config import flatten
from gan_lightning.errors import GanLightningError
from gan_lightning.files import atomic_write
from gan_lightning.outputs import check_not_inside
from gan_lightning.rundir import check_writable

# Keys that name or place a run rather than describe its experiment: never listed as a difference.
_PLACEMENT_KEYS = {"run.dir", "run.name", "run.resume", "run.quiet"}
# Scores with columns of their own in every table; the other registered scores get one when a run logged them.
_FIXED_SCORES = ("fid", "is", "kid")
# The k-NN scores plotted together in manifold.png.
_MANIFOLD = ("precision", "recall", "density", "coverage")
# The key that makes runs repetitions of one experiment.
_SEED_KEY = "run.seed"


@dataclass
class Run:
    path: Path
    config: dict[str, Any]  # flattened: "model.lr_g" -> 2e-4
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # scalar -> [(batches, value)]
    seconds: float | None = None
    label: str | None = None  # set by label_runs when folder names alone are ambiguous
    grid: Any = None  # the last sample grid (a decoded PIL RGB image), or None

    @property
    def name(self) -> str:
        return self.label or self.path.name

    def last(self, key: str) -> float | None:
        series = self.history.get(key)
        return series[-1][1] if series else None

    def best(self, key: str) -> tuple[float, int] | tuple[None, None]:
        series = self.history.get(key)
        if not series:
            return None, None
        batches, value = min(series, key=lambda point: point[1])
        return value, batches

    @property
    def batches(self) -> int | None:
        ends = [series[-1][0] for series in self.history.values() if series]
        return max(ends) if ends else None


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories named, or found up to two levels below the folders named; one line if there are none."""
    found: list[Path] = []
    for given in map(Path, paths):
        if not given.is_dir():
            raise GanLightningError(f"compare: {given} is not a directory")
        if (given / "config.yaml").is_file():
            found.append(given)
            continue
        below = sorted({p.parent for pattern in ("*/config.yaml", "*/*/config.yaml") for p in given.glob(pattern)})
        if not below:
            raise GanLightningError(f"compare: {given} holds no run directory (no config.yaml in it or below it)")
        found += below
    return list(dict.fromkeys(found))


def read_run(path: Path) -> Run:
    """One run directory; a file of it that cannot be read or parsed is one line naming the file (GanLightningError)."""
    try:
        config = flatten(OmegaConf.to_container(OmegaConf.load(path / "config.yaml"), resolve=False))
    except Exception as error:  # a damaged YAML: say which file
        raise GanLightningError(f"config.yaml cannot be read ({type(error).__name__})") from None
    run = Run(path, config)
    if (path / "metrics.csv").is_file():
        run.history = read_metrics(path / "metrics.csv")
    summary = path / "summary.json"
    if summary.is_file():
        try:
            run.seconds = float(json.loads(summary.read_text())["seconds"])
        except (ValueError, KeyError, TypeError):
            run.seconds = None  # the wall time is optional: a damaged summary leaves its cell empty
    pngs = sorted((path / "samples").glob("*.png")) if (path / "samples").is_dir() else []
    if pngs:
        run.grid = _decoded(pngs[-1])
    return run


def _number_in(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise GanLightningError(f"{where} {text!r} is not a number") from None


def read_metrics(path: Path) -> dict[str, list[tuple[int, float]]]:
    """The scalars of a ``metrics.csv``, each as [(batches, value)] sorted by batches; a file that is not such a
    table (a step or value that is not a number, a row longer than the header, bytes that are not text) is one line
    naming the file and the line."""
    history: dict[str, list[tuple[int, float]]] = {}
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                where = f"{path.name} line {reader.line_num}:"
                if None in row:
                    raise GanLightningError(f"{where} more fields than the header has")
                if not row.get("step"):
                    continue
                step = _number_in(row["step"], f"{where} step")
                if not (math.isfinite(step) and step >= 0):
                    raise GanLightningError(f"{where} step {row['step']!r} is not a batch count")
                batches = int(step) + 1  # the logged step is the number of batches before
                for key, text in row.items():
                    if key not in ("step", "epoch") and text:
                        history.setdefault(key, []).append((batches, _number_in(text, f"{where} {key}")))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise GanLightningError(f"{path.name} cannot be read ({type(error).__name__})") from None
    for series in history.values():
        series.sort()
    return history


def _decoded(png: Path) -> Any:
    """``png`` decoded whole, as RGB: a damaged grid is found while reading, before anything is written."""
    from gan_lightning.images import IMAGE_ERRORS, image_error_reason, open_image

    try:
        with open_image(png) as image:
            return image.convert("RGB")
    except IMAGE_ERRORS as error:
        raise GanLightningError(f"{png.relative_to(png.parent.parent)} cannot be decoded "
                                f"({image_error_reason(error)})") from None


def read_runs(paths: list[str | Path]) -> list[Run]:
    """The runs ``find_runs`` finds, read; a damaged one is skipped with one warning line naming it, and if none
    can be read that is one error line."""
    runs, damaged = [], []
    for path in find_runs(paths):
        try:
            runs.append(read_run(path))
        except GanLightningError as error:
            damaged.append(f"{path}: {error}")
    if not runs:
        more = f" (and {len(damaged) - 1} more damaged runs)" if len(damaged) > 1 else ""
        raise GanLightningError(f"compare: no run can be read: {damaged[0]}{more}")
    for problem in damaged:
        print(f"warning: compare: skipping damaged run {problem}", file=sys.stderr)
    return runs


def differing_keys(runs: list[Run]) -> list[str]:
    """Config keys with different values in the runs that have them (a key only some runs have, such as one
    variant's own options or a key newer than an old run, differs only if those runs disagree on it)."""
    keys = sorted({key for run in runs for key in run.config} - _PLACEMENT_KEYS)
    return [key for key in keys
            if len({json.dumps(run.config[key], sort_keys=True) for run in runs if key in run.config}) > 1]


def label_runs(runs: list[Run]) -> None:
    """Name each run by its path below the runs' common folder (``dcgan_mnist/seed0``), or its folder name when
    those are unique."""
    names = [run.path.name for run in runs]
    if len(set(names)) == len(names):
        return
    root = Path(os.path.commonpath([run.path.resolve() for run in runs]))
    for run in runs:
        run.label = str(run.path.resolve().relative_to(root)) if run.path.resolve() != root else run.path.name


def _number(value: float | None, digits: int = 2) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _coverage(run: Run) -> str:
    for key, total in (("val/classes_covered", 10), ("val/modes_captured", None)):
        value = run.last(key)
        if value is not None:
            return f"{value:.0f}" + (f" / {total}" if total else " modes")
    return ""


def logged_scores(runs: list[Run]) -> list[str]:
    """The registered scores beyond FID / IS / KID (and their spreads) that at least one run logged, in the
    registry's order (precision, recall, density, coverage, intra_fid, cas, cas_real, ppl, then any registered
    later): their columns appear only then, so tables of FID-only runs stay as they were."""
    from gan_lightning.metrics.stats import score_keys

    extra = [key for key in score_keys() if key not in _FIXED_SCORES and not key.endswith("_std")]
    return [key for key in extra if any(run.history.get(f"val/{key}") for run in runs)]


def rank_runs(runs: list[Run], score: str) -> list[Run]:
    """Runs by their final ``score`` (a metric name such as recall or fid), best first; runs without it last."""
    from gan_lightning.metrics.stats import score_keys

    better = score_keys().get(score)
    if better is None:
        raise GanLightningError(f"compare --rank-by: unknown score {score!r}; accepted: {', '.join(score_keys())}")
    sign = -1.0 if better == "higher" else 1.0
    return sorted(runs, key=lambda run: (run.last(f"val/{score}") is None, sign * (run.last(f"val/{score}") or 0.0)))


def run_rows(runs: list[Run], keys: list[str]) -> tuple[list[str], list[list[str]]]:
    extra = logged_scores(runs)
    header = ["run", "variant", "dataset", "batches", "seconds", "best FID", "best FID batch", "final FID",
              "final IS", "final KID", *[f"final {name}" for name in extra], "classes / modes", "final D loss",
              "final G loss", *keys]
    rows = []
    for run in runs:
        best, best_batch = run.best("val/fid")
        rows.append([run.name, str(run.config.get("model.name", "")), str(run.config.get("data.name", "")),
                     str(run.batches or ""), _number(run.seconds, 1), _number(best), str(best_batch or ""),
                     _number(run.last("val/fid")), _number(run.last("val/is")), _number(run.last("val/kid"), 4),
                     *[_number(run.last(f"val/{name}"), 3) for name in extra],
                     _coverage(run), _number(run.last("train/d_loss"), 4), _number(run.last("train/g_loss"), 4),
                     *[str(run.config.get(key, "")) for key in keys]])
    return header, rows


def _mean_std(values: list[float]) -> str:
    if not values:
        return ""
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {spread:.2f}"


def seed_groups(runs: list[Run], keys: list[str]) -> tuple[list[str], list[list[str]]] | None:
    """Mean +- std of the scores over runs that differ only in run.seed; None if no group has two runs."""
    varying = [key for key in keys if key != _SEED_KEY]
    groups: dict[tuple[str, ...], list[Run]] = {}
    for run in runs:
        groups.setdefault(tuple(str(run.config.get(key, "")) for key in varying), []).append(run)
    if all(len(members) < 2 for members in groups.values()):
        return None
    extra = logged_scores(runs)
    header = [*varying, "runs", "best FID", "final FID", "final IS", "final KID", *[f"final {m}" for m in extra]]
    rows = []
    scores = [lambda r: r.best("val/fid")[0], lambda r: r.last("val/fid"), lambda r: r.last("val/is"),
              lambda r: r.last("val/kid"), *[lambda r, m=m: r.last(f"val/{m}") for m in extra]]
    for identity, members in groups.items():
        cells = [_mean_std([v for v in map(score, members) if v is not None]) for score in scores]
        rows.append([*identity, str(len(members)), *cells])
    return header, rows


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _plot(runs: list[Run], panels: list[tuple[str, str]], path: Path) -> bool:
    """One panel per (scalar, title), a line per run against batches; False (nothing written) if no run logged
    any of the scalars."""
    if not any(run.history.get(key) for run in runs for key, _ in panels):
        return False
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6 * len(panels), 4))
    FigureCanvasAgg(fig)
    for index, (key, title) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), index + 1)
        for run in runs:
            series = run.history.get(key)
            if series:
                ax.plot([b for b, _ in series], [v for _, v in series], label=run.name,
                        marker="o" if len(series) < 20 else None)
        ax.set_xlabel("batches")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize="small")
    fig.tight_layout()
    atomic_write(path, lambda file: fig.savefig(file, format="png", dpi=100))
    return True


def sample_sheet(runs: list[Run], path: Path) -> bool:
    """The last grid of each run, side by side under its name; False if no run has a grid."""
    from PIL import Image, ImageDraw

    grids = [(run.name, run.grid) for run in runs if run.grid is not None]
    if not grids:
        return False
    label, gap = 16, 8
    width = sum(image.width for _, image in grids) + gap * (len(grids) - 1)
    sheet = Image.new("RGB", (width, label + max(image.height for _, image in grids)), "white")
    draw, x = ImageDraw.Draw(sheet), 0
    for name, image in grids:
        draw.text((x + 2, 2), name[: max(4, image.width // 7)], fill="black")
        sheet.paste(image, (x, label))
        x += image.width + gap
    atomic_write(path, lambda file: sheet.save(file, format="PNG"))
    return True


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda file: file.write(text.encode()))


def compare(paths: list[str | Path], out: str | Path, rank_by: str | None = None) -> str:
    """Read the runs, write the table, the plots and the grid sheet into ``out``; returns the Markdown text. Rows
    are in path order, or best first by the final ``rank_by`` score (e.g. "recall", "coverage", "fid")."""
    out = Path(out)
    check_writable(out, "--out")  # a file (or a folder under one) is one line, before any run is read
    check_not_inside(out, "--out", {path: "the run directory" for path in find_runs(paths)})
    runs = read_runs(paths)
    if rank_by is not None:
        runs = rank_runs(runs, rank_by)
    label_runs(runs)
    keys = differing_keys(runs)
    header, rows = run_rows(runs, keys)
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(header)
    writer.writerows(rows)
    text = markdown(header, rows)
    grouped = seed_groups(runs, keys)
    if grouped is not None:
        text += "\n\nMean ± std over seeds:\n\n" + markdown(*grouped)
    _write_text(out / "compare.csv", table.getvalue())
    written = ["compare.csv", "compare.md"]
    if _plot(runs, [("val/fid", "FID")], out / "fid.png"):
        written.append("fid.png")
    if _plot(runs, [("train/d_loss", "D loss"), ("train/g_loss", "G loss")], out / "losses.png"):
        written.append("losses.png")
    manifold = [name for name in logged_scores(runs) if name in _MANIFOLD]
    if manifold and _plot(runs, [(f"val/{name}", name) for name in manifold], out / "manifold.png"):
        written.append("manifold.png")
    if sample_sheet(runs, out / "samples.png"):
        written.append("samples.png")
    _write_text(out / "compare.md", text + "\n")
    return text + f"\n\n{len(runs)} runs; written to {out}: {', '.join(written)}"
