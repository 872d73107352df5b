"""Interrupted, diverging, concurrent and hostile runs: nothing is lost, the user gets one line.

Black-box through the CLI (``main`` in-process, or a subprocess where signals and concurrency need a real process):
tiny DCGANs on fake MNIST, a few batches each.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gan_lightning.checkpoints import non_finite_entries
from gan_lightning.cli import main
from tests.conftest import assert_same_state, tiny_overrides, write_fake_mnist
from tests.test_zoo_experiments import tiny

MNIST_EXPERIMENTS = ["gan_mnist", "dcgan_mnist", "cgan_mnist", "wgan_mnist", "wgan_gp_mnist", "sngan_mnist"]
REPO = Path(__file__).resolve().parents[1]


def ckpt(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)


def csv_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


# --- 1. hostile checkpoints ------------------------------------------------------------------------------------
class _PlantsMarker:
    """Unpickling this runs ``os.mkdir(marker)``: what a crafted checkpoint could do with full unpickling."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_malicious_pickle_is_refused_and_runs_nothing(fake_mnist: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, run, 2)]) == 0
    marker = tmp_path / "pwned"
    checkpoint = ckpt(run)
    checkpoint["extra"] = _PlantsMarker(marker)  # a real checkpoint with one extra pickled key
    evil = tmp_path / "evil.ckpt"
    torch.save(checkpoint, evil)
    capsys.readouterr()
    commands = [["sample", str(evil), "--out", str(tmp_path / "x.png")],
                ["evaluate", str(evil), "--metrics", "fid", "--n", "16"],
                ["train", "dcgan_mnist", *tiny_overrides(fake_mnist, tmp_path / "other", 4), f"run.resume={evil}"]]
    for command in commands:
        assert main(command) == 1, command[0]
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "is not a gan-lightning checkpoint" in err and "weights_only" in err, err
        assert not marker.exists(), command[0]
    assert not (tmp_path / "other").exists() and not (tmp_path / "x.png").exists()


# --- 2. signals --------------------------------------------------------------------------------------------------
def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    start = time.time()
    while not path.exists():
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.time() - start < timeout, f"{path} never appeared"
        time.sleep(0.05)


STRAIGHT_STEPS = 24


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("signals")
    write_fake_mnist(root / "data")
    run = root / "straight"
    assert main(["train", "dcgan_mnist", *tiny_overrides(root / "data", run, STRAIGHT_STEPS),
                 "callbacks.samples.every_n_steps=1"]) == 0
    return root / "data", ckpt(run)


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_at_a_batch_boundary_and_resume_is_exact(straight_run, tmp_path: Path, capsys, signum: int,
                                                             code: int) -> None:
    data, straight = straight_run
    run = tmp_path / "run"
    # Same experiment with an open-ended budget; a grid every batch shows when training is under way.
    args = [sys.executable, "-m", "gan_lightning", "train", "dcgan_mnist", *tiny_overrides(data, run, 100_000),
            "callbacks.samples.every_n_steps=1"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        _wait_for(run / "samples" / "step_0000002.png", process)
        # 5. A second training on the same run directory is refused while the first holds it.
        assert main(["train", "dcgan_mnist", *tiny_overrides(data, run, 8)]) == 1
        assert "is in use by a running training" in capsys.readouterr().err
        process.send_signal(signum)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()  # a failed assertion must not leave a 100,000-batch run behind
            process.wait()
    assert process.returncode == code, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"stopped: {signal.Signals(signum).name} at batch "), err
    assert "--resume" in lines[0] and str(run / "checkpoints" / "last.ckpt") in lines[0]
    stopped = ckpt(run)
    stopped_at = stopped["global_step"]
    assert 2 <= stopped_at < STRAIGHT_STEPS, stopped_at
    assert int(stopped["state_dict"]["batches_seen"]) == stopped_at  # saved after a whole batch, not inside one
    assert not (run / ".lock").exists()
    assert main(["train", "dcgan_mnist", *tiny_overrides(data, run, STRAIGHT_STEPS),
                 "callbacks.samples.every_n_steps=1", "--resume"]) == 0
    assert_same_state(straight, ckpt(run))
    assert [int(r["step"]) for r in csv_rows(run)] == list(range(STRAIGHT_STEPS))


# --- 3. exact resume with every shipped callback on ----------------------------------------------------------
@pytest.mark.parametrize("experiment", MNIST_EXPERIMENTS)
def test_resume_is_exact_with_metrics_samples_and_checkpoints_on(experiment: str, fake_mnist: Path,
                                                                 tmp_path: Path) -> None:
    steps = 10 if experiment.startswith("wgan") else 6  # at least one generator step after the split
    # KID (100 kernel subsets per evaluation) is the slow metric; one recipe is enough to cover it.
    metrics = "fid,is,kid" if experiment == "dcgan_mnist" else "fid,is"

    def args(run: Path, max_steps: int) -> list[str]:
        return [*tiny(experiment, run, fake_mnist), f"trainer.max_steps={max_steps}",
                "callbacks.metrics.enabled=true", "callbacks.metrics.every_n_steps=3",
                f"callbacks.metrics.metrics={metrics}",
                "callbacks.metrics.n_samples=32", "callbacks.metrics.n_real=64", "callbacks.metrics.batch_size=32",
                "callbacks.samples.every_n_steps=2", "callbacks.checkpoint.every_n_steps=2"]

    assert main(["train", experiment, *args(tmp_path / "straight", steps)]) == 0
    split = steps // 2 + 1  # an evaluation at the split batch that the straight run does not make
    assert main(["train", experiment, *args(tmp_path / "split", split)]) == 0
    assert main(["train", experiment, *args(tmp_path / "split", steps), "--resume"]) == 0
    assert_same_state(ckpt(tmp_path / "straight"), ckpt(tmp_path / "split"))
    evaluated = sorted(p.name for p in (tmp_path / "split" / "metrics").iterdir())
    assert f"step_{split:07d}.json" in evaluated


# --- 4. divergence -----------------------------------------------------------------------------------------------
@pytest.fixture
def poisoned_batches(monkeypatch: pytest.MonkeyPatch):
    """Make the given training batches (1-based, in the order the loader yields them) all NaN."""
    from datamodules.base import InMemoryDataModule

    poisoned: set[int] = set()
    original = InMemoryDataModule.batch_transform
    calls = {"n": 0}

    def transform(self, samples):
        calls["n"] += 1
        images = original(self, samples)
        return torch.full_like(images, float("nan")) if calls["n"] in poisoned else images

    monkeypatch.setattr(InMemoryDataModule, "batch_transform", transform)
    return poisoned


@pytest.fixture(params=["adam", "fused-adam"])
def guard_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both optimizers the base builds: Adam, and (as on GPUs) fused Adam, which runs on the CPU too, so it is forced
    here."""
    if request.param == "fused-adam":
        from gan_lightning.models.base import AdversarialModule

        def fused_adam(self, params, lr):
            return torch.optim.Adam(params, lr=lr, betas=(self.config.beta1, self.config.beta2), fused=True)

        monkeypatch.setattr(AdversarialModule, "_make_optimizer", fused_adam)
    return request.param


def test_a_nan_batch_is_skipped_counted_and_kept_out_of_the_weights(fake_mnist: Path, tmp_path: Path,
                                                                    poisoned_batches: set[int],
                                                                    guard_path: str) -> None:
    poisoned_batches.add(3)
    run = tmp_path / "run"
    assert main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, run, 6)]) == 0
    # Batch 3's D step saw NaN real images: skipped. Its G step (fakes only) and every other step ran.
    assert [float(r["train/skipped_steps"]) for r in csv_rows(run)] == [0, 0, 1, 1, 1, 1]
    checkpoint = ckpt(run)
    assert checkpoint["global_step"] == 6
    for name, value in checkpoint["state_dict"].items():
        if value.is_floating_point():
            assert torch.isfinite(value).all(), name  # batchnorm running stats included: restored after the batch
    assert checkpoint["nonfinite_guard"] == {"skipped_steps": 1, "streak": 0, "amp_skipped_steps": 0}


def test_consecutive_nan_batches_stop_the_run_and_keep_the_last_good_checkpoint(
        fake_mnist: Path, tmp_path: Path, poisoned_batches: set[int], guard_path: str, capsys) -> None:
    poisoned_batches.update(range(3, 100))
    run = tmp_path / "run"
    assert main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, run, 20), "model.max_nonfinite_batches=3"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "training diverged: 3 consecutive batches (to batch 5)" in err, err
    checkpoint = ckpt(run)
    # The last periodic checkpoint (every 2 batches) before the stop; the skipped D steps left it finite.
    assert checkpoint["global_step"] == 4 and checkpoint["nonfinite_guard"]["streak"] == 2
    assert not non_finite_entries(checkpoint["state_dict"])
    assert not (run / ".lock").exists()


def test_sample_and_evaluate_refuse_a_non_finite_model(fake_mnist: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, run, 2)]) == 0
    checkpoint = ckpt(run)
    checkpoint["state_dict"]["generator.net.0.weight"][0] = float("nan")
    broken = tmp_path / "nan.ckpt"
    torch.save(checkpoint, broken)
    capsys.readouterr()
    for command in (["sample", str(broken), "--out", str(tmp_path / "x.png")],
                    ["evaluate", str(broken), "--metrics", "fid", "--n", "16"]):
        assert main(command) == 1
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "non-finite values (generator.net.0.weight)" in err, err


def test_no_checkpoint_with_non_finite_values_is_ever_written(tmp_path: Path) -> None:
    from gan_lightning.checkpoints import NonFiniteStateError, SafeCheckpointIO

    target = tmp_path / "last.ckpt"
    SafeCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(2)}}, target)
    before = target.read_bytes()
    with pytest.raises(NonFiniteStateError, match="state_dict.w"):
        SafeCheckpointIO().save_checkpoint({"state_dict": {"w": torch.tensor([1.0, float("inf")])}}, target)
    with pytest.raises(NonFiniteStateError, match="optimizer_states.0.state.0.exp_avg"):
        SafeCheckpointIO().save_checkpoint({"state_dict": {}, "optimizer_states": [
            {"state": {0: {"exp_avg": torch.tensor([float("nan")])}}}]}, target)
    assert target.read_bytes() == before


# --- 5. one run per run directory ---------------------------------------------------------------------------------
def test_a_stale_lock_is_taken_over(fake_mnist: Path, tmp_path: Path) -> None:
    import socket

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").write_text(f"{socket.gethostname()} {dead.pid}\n")
    assert main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, run, 2)]) == 0
    assert ckpt(run)["global_step"] == 2 and not (run / ".lock").exists()


def test_a_lock_from_another_host_is_respected(fake_mnist: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").write_text("some-other-node 12345\n")
    assert main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, run, 2)]) == 1
    assert "locked by process 12345 on host some-other-node" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == [".lock"]



@pytest.mark.parametrize("lock, job, taken_over", [
    ("some-other-node 12345 777 0", "777", True),  # requeued job: its previous incarnation died on another node
    ("some-other-node 12345 777 0", "778", False),  # another job's run
    ("some-other-node 12345 777 1", "777", False),  # this very incarnation on another node (two trainings, one job)
    ("some-other-node 12345", "777", False),  # a lock written before locks named SLURM jobs
], ids=["same-job-earlier-incarnation", "other-job", "same-incarnation", "old-two-field-lock"])
def test_a_requeued_slurm_job_takes_over_its_own_lock_only(fake_mnist: Path, tmp_path: Path, capsys, monkeypatch,
                                                            lock: str, job: str, taken_over: bool) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", job)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").write_text(lock + "\n")
    code = main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, run, 2)])
    err = capsys.readouterr().err.strip()
    if taken_over:
        assert code == 0 and ckpt(run)["global_step"] == 2 and not (run / ".lock").exists(), err
    else:
        named = " (SLURM job {}, restart {})".format(*lock.split()[2:]) if len(lock.split()) == 4 else ""
        assert code == 1 and err == (f"error: run.dir: {run} is locked by process 12345 on host some-other-node"
                                     f"{named}; if that run is dead, delete {run / '.lock'}")
        assert sorted(p.name for p in run.iterdir()) == [".lock"]


def test_the_lock_names_the_slurm_job_and_its_restart(tmp_path: Path, monkeypatch) -> None:
    import socket

    from gan_lightning.rundir import RunDirLock

    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)  # unset until the first requeue
    with RunDirLock(tmp_path):
        assert (tmp_path / ".lock").read_text() == f"{socket.gethostname()} {os.getpid()} 4242 0\n"
    monkeypatch.delenv("SLURM_JOB_ID")
    with RunDirLock(tmp_path):
        assert (tmp_path / ".lock").read_text() == f"{socket.gethostname()} {os.getpid()}\n"

# --- 6. resume with a changed config ----------------------------------------------------------------------------------
def test_resume_refuses_changes_that_cannot_apply_mid_run(fake_mnist: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, run, 2)]) == 0
    config_before = (run / "config.yaml").read_bytes()
    ckpt_before = (run / "checkpoints" / "last.ckpt").read_bytes()
    capsys.readouterr()
    assert main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, run, 4), "model.width_g=8", "model.lr_d=1e-3",
                 "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "model.lr_d (0.0002 -> 0.001), model.width_g (4 -> 8)" in err, err
    assert (run / "config.yaml").read_bytes() == config_before
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == ckpt_before


def test_resume_applies_and_records_allowed_changes(fake_mnist: Path, tmp_path: Path, capsys) -> None:
    import shutil

    from omegaconf import OmegaConf

    run = tmp_path / "run"
    assert main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, run, 2)]) == 0
    moved = tmp_path / "moved"
    shutil.copytree(fake_mnist, moved)  # the same data, somewhere else
    assert main(["train", "dcgan_mnist", *tiny_overrides(moved, run, 4), "callbacks.samples.every_n_steps=4",
                 "--resume"]) == 0
    assert ckpt(run)["global_step"] == 4
    history = OmegaConf.to_container(OmegaConf.load(run / "resumes.yaml"))
    assert len(history) == 1 and history[0]["batch"] == 2
    assert history[0]["changes"] == {"callbacks.samples.every_n_steps": {"from": 2, "to": 4},
                                     "data.root": {"from": str(fake_mnist), "to": str(moved)},
                                     "trainer.max_steps": {"from": 2, "to": 4}}
    saved = OmegaConf.load(run / "config.yaml")
    assert saved.trainer.max_steps == 4 and saved.data.root == str(moved)
    # Other data under the same key is refused, and so is a budget already spent.
    from gan_lightning.data_io import write_idx

    other = tmp_path / "other"
    images = write_fake_mnist(other)
    write_idx(other / "MNIST" / "raw" / "train-images-idx3-ubyte.gz", 255 - images)  # other digits, same shape
    capsys.readouterr()
    assert main(["train", "dcgan_mnist", *tiny_overrides(other, run, 6), "--resume"]) == 2
    assert "is not the data" in capsys.readouterr().err
    assert main(["train", "dcgan_mnist", *tiny_overrides(moved, run, 4), "--resume"]) == 2
    assert "is at batch 4, trainer.max_steps=4 is already reached" in capsys.readouterr().err


# --- 9. atomic checkpoint writes ------------------------------------------------------------------------------------
def test_a_kill_during_a_checkpoint_write_leaves_the_previous_one_intact(tmp_path: Path) -> None:
    from gan_lightning.files import TEMP_PREFIX, atomic_torch_save, remove_stale_temporaries

    target = tmp_path / "last.ckpt"
    atomic_torch_save({"step": torch.tensor(1)}, target)
    before = target.read_bytes()
    # The writer dies (SIGKILL-like: no cleanup, no exception handling) after writing, before the rename.
    script = ("import os, torch; from gan_lightning import checkpoints; os.fsync = lambda fd: os._exit(9); "
              f"checkpoints.atomic_torch_save({{'step': torch.tensor(2), 'big': torch.zeros(10**6)}}, {str(target)!r})")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO)
    assert result.returncode == 9
    assert target.read_bytes() == before
    assert torch.load(target, weights_only=True)["step"] == 1
    leftovers = list(tmp_path.glob(f"{TEMP_PREFIX}*"))
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 4 * 10**6  # the half-finished write, beside it
    remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_a_failed_checkpoint_write_leaves_no_temporary(tmp_path: Path) -> None:
    from gan_lightning.files import atomic_torch_save

    target = tmp_path / "last.ckpt"
    atomic_torch_save({"step": torch.tensor(1)}, target)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_torch_save({"big": torch.zeros(1000), "bad": Unpicklable()}, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    assert torch.load(target, weights_only=True)["step"] == 1
