"""The W&B logger, offline: run files in run.dir/wandb, read back with W&B's own record format (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gan_lightning.cli import main
from tests.conftest import tiny_overrides
from tests.wandb_records import read_run

METRICS = ["callbacks.metrics.enabled=true", "callbacks.metrics.every_n_steps=2", "callbacks.metrics.n_samples=40",
           "callbacks.metrics.n_real=48", "callbacks.metrics.batch_size=20"]


def test_wandb_offline_run_holds_history_config_summary_and_grids(fake_mnist: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")  # logger.wandb.mode is null: W&B's own variable decides
    run = tmp_path / "run"
    assert main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, run, 4), *METRICS,
                 f"callbacks.metrics.cache_dir={tmp_path / 'cache'}", "logger.wandb.enabled=true",
                 "logger.wandb.tags=[smoke]", "model.lr_d=3e-4", "callbacks.metrics.metrics=fid,recall"]) == 0
    (offline,) = (run / "wandb").glob("offline-run-*")
    record = read_run(offline / f"run-{offline.name.rsplit('-', 1)[1]}.wandb")
    meta = record["run"]
    assert meta is not None, f"no run record in {offline}: {record['kinds']}"
    assert meta.run_group == "dcgan" and meta.job_type == "train"
    assert set(meta.tags) == {"smoke", "data:mnist", "precision:32-true", "devices:1"}
    # The resolved config under dotted keys: a sweep parameter named model.lr_d is this same entry.
    assert record["config"]["model.lr_d"] == pytest.approx(3e-4) and record["config"]["data.name"] == "mnist"
    rows = record["history"]
    losses = [row for row in rows if "train/d_loss" in row]
    assert [row["trainer/global_step"] for row in losses] == [0, 1, 2, 3]  # batches before each row's batch
    fids = [(row["trainer/global_step"], row["val/fid"]) for row in rows if "val/fid" in row]
    assert [step for step, _ in fids] == [1, 3]  # evaluations after batches 2 and 4
    best_step, best = min(((step + 1, fid) for step, fid in fids), key=lambda item: item[1])
    assert record["summary"]["val/fid_best"] == pytest.approx(best)
    assert record["summary"]["val/fid_best_step"] == best_step
    # Recall is better when higher: its best is the largest value, so a sweep ranks by it as by FID.
    recalls = [(row["trainer/global_step"] + 1, row["val/recall"]) for row in rows if "val/recall" in row]
    best_step, best = max(recalls, key=lambda item: (item[1], -item[0]))
    assert record["summary"]["val/recall_best"] == pytest.approx(best)
    assert record["summary"]["val/recall_best_step"] == best_step
    # Every scalar (train/*, val/*) is plotted against the batch count.
    assert {(m.glob_name, m.step_metric) for m in record["metrics"] if m.glob_name} == {("*", "trainer/global_step")}
    images = sorted(p.name for p in (offline / "files" / "media" / "images").iterdir())
    assert len(images) == 2 and all(name.startswith("samples_") and name.endswith(".png") for name in images)
    grids = [row["trainer/global_step"] for row in rows if "samples/filenames" in row]
    assert grids == [1, 3]  # the grids after batches 2 and 4, at the steps of those batches' scalars
    assert (run / "metrics.csv").is_file()  # the CSV record is kept alongside W&B
