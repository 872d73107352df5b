"""The CLI end to end on tiny runs: run directory contract, sample, resume equality, safe failures."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import torch
from PIL import Image

from gan_lightning.cli import main
from tests.conftest import SHARED_MNIST, assert_same_state, tiny_overrides


def train(data_root: Path, run_dir: Path, steps: int, *extra: str) -> int:
    return main(["train", "dcgan_mnist", *tiny_overrides(data_root, run_dir, steps), *extra])


def test_train_writes_the_full_run_directory(fake_mnist: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert train(fake_mnist, run, 4) == 0
    # The run ends with one line: batches, time, last losses, where its last grid and checkpoint are (and its scores,
    # when it evaluated: see the next test).
    last = capsys.readouterr().out.splitlines()[-1]
    assert re.fullmatch(rf"finished: 4 batches in \d+\.\ds; d_loss \d\.\d+, g_loss \d\.\d+; samples "
                        rf"{re.escape(str(run / 'samples' / 'step_0000004.png'))}; checkpoint "
                        rf"{re.escape(str(run / 'checkpoints' / 'last.ckpt'))}; run directory {re.escape(str(run))}",
                        last), last
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0000002.png", "step_0000004.png"]
    grid = Image.open(run / "samples" / "step_0000004.png")
    assert grid.size == (8 * 28 + 9 * 2, 2 * 28 + 3 * 2)  # 16 samples, 8 per row, 2-pixel padding
    rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
    assert [int(r["step"]) for r in rows] == [0, 1, 2, 3]
    for key in ("train/d_loss", "train/g_loss", "train/d_real", "train/d_fake"):
        assert all(0.0 < float(r[key]) < 10 for r in rows), key
    assert all(0.0 < float(r["train/d_real"]) < 1.0 for r in rows)  # D(x) as a probability
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)  # no pickled objects
    assert checkpoint["global_step"] == 4


def test_the_final_report_reads_the_last_scores_and_grid(tmp_path: Path) -> None:
    from gan_lightning.rundir import final_report

    (tmp_path / "metrics").mkdir()
    (tmp_path / "samples").mkdir()
    for step, fid in ((500, 40.0), (2500, 24.78084)):
        report = {"step": step, "fid": fid, "is": 3.42097, "kid": 0.630355, "class_histogram": [1] * 10,
                  "classes_covered": 9, "n_samples": 5000, "extractor": "mnist-cnn"}
        (tmp_path / "metrics" / f"step_{step:07d}.json").write_text(json.dumps(report))
        (tmp_path / "samples" / f"step_{step:07d}.png").write_bytes(b"")
    (tmp_path / "metrics" / "step_0000100.json").write_text("{damaged")  # an older, unreadable one: not the last
    (tmp_path / "summary.json").write_text('{"batches": 2500, "seconds": 213.6, "status": "finished"}')
    # train/* and val/* rows apart, as Lightning's CSV logger writes them: each column's last value
    (tmp_path / "metrics.csv").write_text("step,train/d_loss,train/g_loss,train/d_real,val/fid\n"
                                          "2498,1.25,0.75,0.5,\n2499,,,,24.78\n2499,1.0825,1.5,0.4,\n")
    assert final_report(tmp_path) == (
        f"finished: 2500 batches in 3m34s; d_loss 1.083, g_loss 1.5; scores at batch 2500 (5000 samples, mnist-cnn): "
        f"fid 24.78, is 3.421, kid 0.6304, 9/10 classes ({tmp_path / 'metrics' / 'step_0002500.json'}); "
        f"samples {tmp_path / 'samples' / 'step_0002500.png'}; run directory {tmp_path}")
    assert final_report(tmp_path / "nothing") == f"done; run directory {tmp_path / 'nothing'}"


def test_the_final_report_of_a_run_without_evaluation_reports_reads_the_last_val_scores(tmp_path: Path) -> None:
    from gan_lightning.rundir import final_report

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    (tmp_path / "summary.json").write_text('{"batches": 7384, "seconds": 7384.4, "status": "stopped (SIGTERM)"}')
    (tmp_path / "metrics.csv").write_text("step,train/g_loss,val/modes_captured,val/spread_ratio,val/spread_ratio_std"
                                          "\n7383,0.69,,,\n7383,,8.0,0.97,0.01\n")
    assert final_report(tmp_path) == (
        f"stopped (SIGTERM): 7384 batches in 2h03m04s; g_loss 0.69; last scores: modes_captured 8, spread_ratio 0.97; "
        f"checkpoint {tmp_path / 'checkpoints' / 'last.ckpt'}; run directory {tmp_path}")


def test_sample_png_and_pt(fake_mnist: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    assert train(fake_mnist, run, 2) == 0
    ckpt = str(run / "checkpoints" / "last.ckpt")
    assert main(["sample", ckpt, "--n", "10", "--out", str(tmp_path / "g.png"), "--nrow", "5"]) == 0
    assert Image.open(tmp_path / "g.png").size == (5 * 28 + 6 * 2, 2 * 28 + 3 * 2)
    assert main(["sample", ckpt, "--n", "6", "--out", str(tmp_path / "s.pt"), "--seed", "3"]) == 0
    samples = torch.load(tmp_path / "s.pt")
    assert samples.shape == (6, 1, 28, 28) and samples.min() >= -1 and samples.max() <= 1
    assert main(["sample", ckpt, "--n", "6", "--out", str(tmp_path / "t.pt"), "--seed", "3"]) == 0
    assert torch.equal(samples, torch.load(tmp_path / "t.pt"))  # same seed, same samples
    assert main(["sample", ckpt, "--n", "3", "--out", str(tmp_path / "x.png"), "--label", "2"]) == 1
    assert "not conditional" in capsys.readouterr().err


def test_resume_gives_the_same_weights_as_a_straight_run(fake_mnist: Path, tmp_path: Path) -> None:
    # 64 samples / batch 8 = 8 batches per epoch: the resumed run crosses an epoch boundary.
    extra = ("model.ema_decay=0.9", "model.lr_schedule=linear_decay", "model.lr_decay_end=30")
    assert train(fake_mnist, tmp_path / "straight", 20, *extra) == 0
    assert train(fake_mnist, tmp_path / "split", 10, *extra) == 0
    assert train(fake_mnist, tmp_path / "split", 20, *extra, "--resume") == 0
    a = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "split" / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == 20
    assert_same_state(a, b)
    rows = list(csv.DictReader((tmp_path / "split" / "metrics.csv").read_text().splitlines()))
    assert [int(r["step"]) for r in rows] == list(range(20))  # the resumed run appended its metrics


def test_existing_run_is_never_overwritten(fake_mnist: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert train(fake_mnist, run, 2) == 0
    before = (run / "checkpoints" / "last.ckpt").read_bytes()
    assert train(fake_mnist, run, 4) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == before


def test_missing_data_fails_cleanly_and_keeps_nothing_half_written(tmp_path: Path, capsys) -> None:
    assert train(tmp_path / "nowhere", tmp_path / "run", 2) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: MNIST files missing") and err.count("\n") == 1


def test_resume_of_missing_checkpoint(tmp_path: Path, fake_mnist: Path, capsys) -> None:
    assert train(fake_mnist, tmp_path / "run", 2, "run.resume=/no/such.ckpt") == 2
    assert "run.resume: checkpoint /no/such.ckpt does not exist" in capsys.readouterr().err


def test_sample_from_garbage_checkpoint(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["sample", str(bad), "--out", str(tmp_path / "x.png")]) == 1
    assert "is not a gan-lightning checkpoint" in capsys.readouterr().err


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="../shared/data not beside the checkout")
def test_real_digits_from_shared_data(tmp_path: Path) -> None:
    run = tmp_path / "run"
    code = main(["train", "dcgan_mnist", f"data.root={SHARED_MNIST}", "data.split=test", "data.download=false",
                 "trainer.max_steps=3", f"run.dir={run}", "--quiet", "model.width_g=8", "model.width_d=8",
                 "data.batch_size=32", "callbacks.samples.every_n_steps=3", "trainer.log_every_n_steps=1",
                 "callbacks.metrics.enabled=false"])
    assert code == 0 and (run / "checkpoints" / "last.ckpt").is_file() and (run / "samples").is_dir()


def test_list(capsys: pytest.CaptureFixture) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "dcgan_mnist" in out and "models:" in out and "mnist" in out


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "gan_lightning", "train", "dcgan_mnist", "model.nope=1"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        result.stderr.strip()] and "model.nope: unknown key" in result.stderr


