"""gan-lightning compare: the offline dashboard of run directories."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from gan_lightning.cli import main
from tests.conftest import tiny_overrides

METRICS = ["callbacks.metrics.enabled=true", "callbacks.metrics.every_n_steps=2", "callbacks.metrics.n_samples=40",
           "callbacks.metrics.n_real=48", "callbacks.metrics.batch_size=20"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sweep folder: lr_d 2e-4 with seeds 0 and 1, lr_d 1e-3 with seed 0; 4 batches each, FID every 2."""
    from tests.conftest import write_fake_mnist

    root = tmp_path_factory.mktemp("compare")
    write_fake_mnist(root / "data")
    cache = root / "cache"
    for name, extra in (("a", ["model.lr_d=2e-4", "run.seed=0"]), ("b", ["model.lr_d=2e-4", "run.seed=1"]),
                        ("c", ["model.lr_d=1e-3", "run.seed=0"])):
        assert main(["train", "dcgan_mnist", *tiny_overrides(root / "data", root / "sweep" / name, 4), *METRICS,
                     f"callbacks.metrics.cache_dir={cache}", *extra]) == 0
    return root / "sweep"


def test_compare_writes_the_table_plots_and_grid_sheet(sweep: Path, tmp_path: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["compare", str(sweep), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "out" / "compare.csv").open()))
    assert [r["run"] for r in rows] == ["a", "b", "c"]
    # Only the keys that differ are listed, placement keys (run.dir, run.name) never.
    assert [k for k in rows[0] if "." in k] == ["model.lr_d", "run.seed"]
    assert [(r["model.lr_d"], r["run.seed"]) for r in rows] == [("0.0002", "0"), ("0.0002", "1"), ("0.001", "0")]
    for row in rows:
        run = sweep / row["run"]
        fids = {json.loads(p.read_text())["step"]: json.loads(p.read_text())["fid"]
                for p in (run / "metrics").glob("step_*.json")}
        assert sorted(fids) == [2, 4]
        assert row["final FID"] == f"{fids[4]:.2f}"
        best_batch = min(fids, key=fids.get)
        assert row["best FID"] == f"{fids[best_batch]:.2f}" and row["best FID batch"] == str(best_batch)
        assert row["variant"] == "dcgan" and row["dataset"] == "mnist" and row["batches"] == "4"
        summary = json.loads((run / "summary.json").read_text())
        assert summary["batches"] == 4 and summary["status"] == "finished"
        assert row["seconds"] == f"{summary['seconds']:.1f}"
    # a and b differ only in the seed: one group of 2 with mean +- std, c alone.
    assert "Mean ± std over seeds" in printed and "| 0.0002 | 2 |" in printed and "| 0.001 | 1 |" in printed
    a, b = (float(r["final FID"]) for r in rows[:2])
    assert f"{(a + b) / 2:.2f} ±" in printed
    for name in ("fid.png", "losses.png", "samples.png"):
        assert (tmp_path / "out" / name).stat().st_size > 1000, name
    grid = Image.open(sorted((sweep / "a" / "samples").glob("*.png"))[-1])
    sheet = Image.open(tmp_path / "out" / "samples.png")
    assert sheet.width == 3 * grid.width + 2 * 8 and sheet.height == grid.height + 16


def test_compare_takes_run_directories_one_by_one(sweep: Path, tmp_path: Path, capsys) -> None:
    assert main(["compare", str(sweep / "a"), str(sweep / "c"), "--out", str(tmp_path / "out")]) == 0
    assert "Mean ± std" not in capsys.readouterr().out  # no two runs share everything but the seed
    rows = list(csv.DictReader((tmp_path / "out" / "compare.csv").open()))
    assert [r["run"] for r in rows] == ["a", "c"] and [k for k in rows[0] if "." in k] == ["model.lr_d"]


@pytest.mark.parametrize("target, message", [("missing", "is not a directory"),
                                             ("empty", "holds no run directory")])
def test_compare_refuses_what_holds_no_run_in_one_line(tmp_path: Path, capsys, target: str, message: str) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(tmp_path / target), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err


def test_runs_with_the_same_folder_name_are_told_apart_by_their_path(sweep: Path, tmp_path: Path) -> None:
    import shutil

    for variant in ("dcgan_mnist", "sngan_mnist"):
        shutil.copytree(sweep / "a", tmp_path / "runs" / variant / "seed0")
    assert main(["compare", str(tmp_path / "runs" / "dcgan_mnist" / "seed0"),
                 str(tmp_path / "runs" / "sngan_mnist" / "seed0"), "--out", str(tmp_path / "out")]) == 0
    rows = list(csv.DictReader((tmp_path / "out" / "compare.csv").open()))
    assert [r["run"] for r in rows] == ["dcgan_mnist/seed0", "sngan_mnist/seed0"]
    assert [k for k in rows[0] if "." in k] == []  # copies: nothing differs
