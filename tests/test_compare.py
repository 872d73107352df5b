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
           "callbacks.metrics.n_real=48", "callbacks.metrics.batch_size=20",
           "callbacks.metrics.metrics=fid,is,kid,recall,coverage"]


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


def test_compare_shows_and_ranks_by_recall_and_coverage(sweep: Path, tmp_path: Path) -> None:
    final = {}
    for run in ("a", "b", "c"):
        report = json.loads((sweep / run / "metrics" / "step_0000004.json").read_text())
        final[run] = (report["recall"], report["coverage"], report["fid"])
    for rank_by, position, higher in (("recall", 0, True), ("coverage", 1, True), ("fid", 2, False)):
        assert main(["compare", str(sweep), "--out", str(tmp_path / rank_by), "--rank-by", rank_by]) == 0
        rows = list(csv.DictReader((tmp_path / rank_by / "compare.csv").open()))
        expected = sorted(final, key=lambda run: final[run][position], reverse=higher)
        # Ties keep path order: sorted() is stable, as the ranking is.
        assert [r["run"] for r in rows] == expected, rank_by
        assert [r["final recall"] for r in rows] == [f"{final[r['run']][0]:.3f}" for r in rows]
        assert [r["final coverage"] for r in rows] == [f"{final[r['run']][1]:.3f}" for r in rows]
        assert "final precision" not in rows[0]  # a score no run logged has no column
    assert (tmp_path / "recall" / "manifold.png").stat().st_size > 1000


def test_compare_rank_by_an_unknown_score_is_one_line(sweep: Path, tmp_path: Path, capsys) -> None:
    assert main(["compare", str(sweep), "--out", str(tmp_path / "out"), "--rank-by", "sharpness"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: compare --rank-by: unknown score 'sharpness'; accepted: fid,")
    assert err.count("\n") == 1


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


def _replace_line(path: Path, number: int, line: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = line
    path.write_text("\n".join(lines) + "\n")


def _metrics_line(number: int, line: str):
    return lambda run: _replace_line(run / "metrics.csv", number, line)


def _last_grid(run: Path) -> Path:
    return sorted((run / "samples").glob("*.png"))[-1]


DAMAGED = [
    # (what is done to run "d", the words after its path in the one warning line)
    (_metrics_line(3, "abc,1,2"), "metrics.csv line 3: step 'abc' is not a number"),
    (_metrics_line(2, "nan,1,2"), "metrics.csv line 2: step 'nan' is not a batch count"),
    (_metrics_line(4, "3,1,x2"), "metrics.csv line 4: train/d_loss 'x2' is not a number"),
    (_metrics_line(2, "0" + ",1" * 40), "metrics.csv line 2: more fields than the header has"),
    (lambda run: (run / "metrics.csv").write_bytes(b"step,train/d_loss\n0,\xff\xfe\n"),
     "metrics.csv cannot be read (UnicodeDecodeError)"),
    (lambda run: _last_grid(run).write_bytes(_last_grid(run).read_bytes()[:200]),
     "samples/{grid} cannot be decoded (OSError)"),
    (lambda run: _last_grid(run).write_bytes(b"not a png"),
     "samples/{grid} cannot be decoded (UnidentifiedImageError)"),
    (lambda run: (run / "config.yaml").write_text("model: [unclosed\n"), "config.yaml cannot be read (ParserError)"),
]


@pytest.mark.parametrize("damage, words", DAMAGED, ids=["step abc", "step nan", "value x2", "long row", "not utf-8",
                                                       "truncated grid", "not a png", "bad yaml"])
def test_a_damaged_run_is_skipped_with_one_warning_line(sweep: Path, tmp_path: Path, capfd, damage, words) -> None:
    import shutil

    runs = tmp_path / "runs"
    shutil.copytree(sweep / "a", runs / "a")
    shutil.copytree(sweep / "c", runs / "d")
    grid = _last_grid(runs / "d").name
    damage(runs / "d")
    capfd.readouterr()
    assert main(["compare", str(runs), "--out", str(tmp_path / "out")]) == 0
    err = capfd.readouterr().err
    assert err == f"warning: compare: skipping damaged run {runs / 'd'}: {words.format(grid=grid)}\n"
    assert [r["run"] for r in csv.DictReader((tmp_path / "out" / "compare.csv").open())] == ["a"]
    assert Image.open(tmp_path / "out" / "samples.png").width == Image.open(_last_grid(runs / "a")).width


def test_when_no_run_can_be_read_nothing_is_written(sweep: Path, tmp_path: Path, capfd) -> None:
    import shutil

    for name in ("b", "c"):
        shutil.copytree(sweep / name, tmp_path / "runs" / name)
        _replace_line(tmp_path / "runs" / name / "metrics.csv", 3, "abc,1,2")
    out = tmp_path / "out"
    out.mkdir()
    (out / "compare.csv").write_text("an earlier table\n")
    capfd.readouterr()
    assert main(["compare", str(tmp_path / "runs"), "--out", str(out)]) == 1
    assert capfd.readouterr().err == (f"error: compare: no run can be read: {tmp_path / 'runs' / 'b'}: metrics.csv "
                                      "line 3: step 'abc' is not a number (and 1 more damaged runs)\n")
    assert [p.name for p in out.iterdir()] == ["compare.csv"]
    assert (out / "compare.csv").read_text() == "an earlier table\n"


def test_an_out_that_is_a_file_is_one_line_and_left_alone(sweep: Path, tmp_path: Path, capfd) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("mine\n")
    for out in (target, target / "sub"):
        capfd.readouterr()
        assert main(["compare", str(sweep), "--out", str(out)]) == 1
        assert capfd.readouterr().err == f"error: --out: cannot create {out}: {target} is a file, not a directory\n"
    assert target.read_text() == "mine\n" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
