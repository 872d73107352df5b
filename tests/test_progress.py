"""Logs that stay readable when redirected: plain progress lines instead of a redrawn bar, and one summary line."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gan_lightning.callbacks.progress import duration, progress_mode
from gan_lightning.cli import main
from tests.conftest import tiny_overrides

REPO = Path(__file__).resolve().parents[1]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("setting, stream, quiet, mode", [
    ("auto", _Terminal(), False, "bar"), ("auto", io.StringIO(), False, "lines"), ("bar", io.StringIO(), False, "bar"),
    ("lines", _Terminal(), False, "lines"), ("none", _Terminal(), False, "none"), ("auto", _Terminal(), True, "none"),
    ("lines", io.StringIO(), True, "none")])
def test_the_progress_mode(setting: str, stream, quiet: bool, mode: str) -> None:
    assert progress_mode(setting, quiet, stream) == mode


@pytest.mark.parametrize("seconds, text", [(0.04, "0.0s"), (12.34, "12.3s"), (59.94, "59.9s"), (213.6, "3m34s"),
                                           (3599.4, "59m59s"), (7384.4, "2h03m04s")])
def test_durations(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def _tiny(fake_mnist: Path, run: Path, steps: int) -> list[str]:
    return [item for item in tiny_overrides(fake_mnist, run, steps) if item != "run.quiet=true"]


def test_a_redirected_run_prints_plain_lines_and_one_summary_line(fake_mnist: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "gan_lightning", "train", "dcgan_mnist", *_tiny(fake_mnist, run, 7),
                             "run.progress_every=3"], capture_output=True, text=True, cwd=tmp_path, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stdout and "\r" not in result.stderr
    progress = [line for line in result.stdout.splitlines() if line.startswith("batch ")]
    # every 3 batches and at the last: 3, 6, 7 (data.limit=64 / batch 8 = 8 batches an epoch: all in epoch 0)
    pattern = (r"batch {}/7 \({}%\) epoch 0 \| d_loss \d+\.\d+ g_loss \d+\.\d+ \| [\d.e+]+ batches/s, \d+\.\ds "
               r"elapsed(, \d+\.\ds left)?")
    assert len(progress) == 3, result.stdout
    for line, (batch, percent) in zip(progress, [(3, 43), (6, 86), (7, 100)], strict=True):
        assert re.fullmatch(pattern.format(batch, percent), line), line
    assert progress[-1].endswith("0.0s left")
    last = result.stdout.splitlines()[-1]
    assert last.startswith("finished: 7 batches in ") and last.endswith(f"; run directory {run}"), last
    assert f"; checkpoint {run / 'checkpoints' / 'last.ckpt'}; " in last


def test_the_bar_when_asked_for_and_nothing_when_none(fake_mnist: Path, tmp_path: Path, capfd) -> None:
    assert main(["train", "dcgan_mnist", *_tiny(fake_mnist, tmp_path / "bar", 2), "run.progress=bar"]) == 0
    out, err = capfd.readouterr()
    assert "\r" in out + err and not re.search(r"^batch \d", out, re.M)
    assert main(["train", "dcgan_mnist", *_tiny(fake_mnist, tmp_path / "none", 2), "run.progress=none"]) == 0
    out, err = capfd.readouterr()
    assert "\r" not in out + err and not re.search(r"^batch \d", out, re.M)
    assert out.splitlines()[-1].startswith("finished: 2 batches in ")


def test_a_bad_progress_setting_is_one_line(capsys) -> None:
    assert main(["train", "dcgan_digits", "run.progress=fancy", "--dry-run"]) == 2
    assert capsys.readouterr().err == "error: run.progress: 'fancy'; accepted: auto, bar, lines, none\n"
    assert main(["train", "dcgan_digits", "run.progress_every=0", "--dry-run"]) == 2
    assert capsys.readouterr().err == "error: run.progress_every: 0; accepted: an int >= 1\n"
