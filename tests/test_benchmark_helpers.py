"""The table maths the benchmark scripts report with (benchmarks/cli_runs.py)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from cli_runs import report, run_all, summary  # noqa: E402


def test_summary_is_mean_and_sample_std_and_skips_nans() -> None:
    assert summary([1.0, 2.0, 3.0]) == "2.0 ± 1.0"  # sample std: sqrt(((1-2)^2 + (3-2)^2) / 2) = 1
    assert summary([0.5], digits=2) == "0.50 ± 0.00"
    assert summary([1.0, math.nan, 3.0]) == "2.0 ± 1.4 (2 of 3)"
    assert summary([math.nan]) == "n/a"


def test_run_all_and_report(tmp_path: Path, capsys) -> None:
    results = run_all(["a", "b"], [0, 1], 2, lambda experiment, seed: {"experiment": experiment, "x": seed * 10.0})
    assert [r["x"] for r in results] == [0.0, 10.0, 0.0, 10.0]
    table = report(results, ["a", "b"], ["x"], lambda runs: [summary([r["x"] for r in runs])],
                   tmp_path / "out" / "t.json", steps=5)
    assert table.splitlines() == ["| experiment | x |", "|---|---|", "| a | 5.0 ± 7.1 |", "| b | 5.0 ± 7.1 |"]
    assert table in capsys.readouterr().out
    saved = json.loads((tmp_path / "out" / "t.json").read_text())
    assert saved["steps"] == 5 and saved["table"] == table and len(saved["runs"]) == 4


def test_superres_quality_table_is_per_test_set_mean_std_and_gain_over_bicubic() -> None:
    from superres_quality import ROWS, table

    def scores(psnr: float) -> dict:
        bicubic = {"psnr_y": 20.0, "ssim_y": 0.5, "psnr_rgb": 19.0, "ssim_rgb": 0.4}
        return {"set": {"psnr_y": psnr, "ssim_y": 0.6, "psnr_rgb": psnr - 1, "ssim_rgb": 0.5, "bicubic": bicubic}}

    runs = [{"scores": {row: scores(22.0 + seed + 2 * (row == "srgan")) for row in ROWS}} for seed in (0, 2)]
    lines = table(runs).splitlines()
    assert lines[2] == "| set | bicubic | 20.00 | 0.5000 | 19.00 | 0.4000 | 0 |"
    # srresnet: PSNR-Y 22 and 24 -> mean 23, sample std sqrt(2) = 1.41; gain over bicubic's 20: 3 +- 1.41
    assert lines[3] == ("| set | srresnet | 23.00 ± 1.41 | 0.6000 ± 0.0000 | 22.00 ± 1.41 | 0.5000 ± 0.0000 "
                        "| 3.00 ± 1.41 |")
    assert lines[4].startswith("| set | srgan | 25.00 ± 1.41 |") and lines[4].endswith("| 5.00 ± 1.41 |")
    assert len(lines) == 3 + len(ROWS)


def test_zoo_quality_budget_is_equal_batches_or_equal_training_time() -> None:
    from argparse import Namespace

    from zoo_quality import budget_overrides

    from gan_lightning.config import load_experiment

    assert budget_overrides(Namespace(steps=1500, minutes=None)) == [
        "trainer.max_steps=1500", "callbacks.metrics.every_n_steps=1500"]
    timed = budget_overrides(Namespace(steps=1500, minutes=90.5))
    assert timed[0] == "trainer.max_time=00:01:30:30"  # Lightning's DD:HH:MM:SS
    # no batch limit and one evaluation (the one at the end); the framework's config check takes the keys
    config = load_experiment("stylegan2_mnist", timed)
    assert config.trainer.max_time == "00:01:30:30"
    assert config.trainer.max_steps == config.callbacks.metrics.every_n_steps == 10**9
