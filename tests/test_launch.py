"""Launching under torchrun and SLURM: the scripts in scripts/ and what the framework does under those launchers.

The scripts run with fake ``torchrun``/``srun``/``scontrol``/``nvidia-smi`` first on PATH, which record their
arguments; SLURM's and torchrun's variables are set by hand. One real 2-process torchrun run when torchrun exists.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gan_lightning.cli import main
from tests.conftest import tiny_overrides
from tests.test_reliability import _wait_for, ckpt

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
LAUNCH_KEYS = ["trainer.strategy=ddp"]


def fake_bin(folder: Path, exits: dict[str, list[int]] | None = None, gpus: int = 0) -> Path:
    """Executables that append their arguments (one JSON list a call) to ``<name>.calls`` and exit with the next
    code of ``exits[name]`` (0 when none is left); ``nvidia-smi -L`` lists ``gpus`` GPUs."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("torchrun", "srun", "scontrol"):
        codes = (exits or {}).get(name, [])
        (folder / name).write_text(f"""#!{sys.executable}
import json, sys
log = {str(folder / (name + ".calls"))!r}
with open(log, "a") as handle:
    handle.write(json.dumps(sys.argv[1:]) + "\\n")
codes = {codes!r}
sys.exit(codes[len(open(log).readlines()) - 1] if len(open(log).readlines()) <= len(codes) else 0)
""")
    listing = "".join(f"GPU {i}: Fake GPU (UUID: GPU-{i})\\n" for i in range(gpus))
    (folder / "nvidia-smi").write_text(f"#!/usr/bin/env bash\nprintf '{listing}'\n" if gpus else "#!/bin/sh\nexit 9\n")
    for path in folder.iterdir():
        path.chmod(0o755)
    return folder


def calls(folder: Path, name: str) -> list[list[str]]:
    log = folder / f"{name}.calls"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def run_script(script: str, args: list[str], cwd: Path, bin_dir: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("SLURM_", "TORCHELASTIC_")) and key not in ("NPROC", "NNODES", "NODE_RANK")}
    environment.update(PATH=f"{bin_dir}:{environment['PATH']}", **env)
    return subprocess.run(["bash", str(SCRIPTS / script), *args], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=60)


# --- torchrun scripts --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("gpus, env, nproc", [(2, {}, "2"), (0, {}, "1"), (2, {"NPROC": "3"}, "3")],
                         ids=["every-gpu", "no-gpu", "NPROC"])
def test_torchrun_single_node_script_passes_the_launch_to_torchrun_and_lightning(tmp_path: Path, gpus: int,
                                                                                 env: dict, nproc: str) -> None:
    bin_dir = fake_bin(tmp_path / "bin", gpus=gpus)
    result = run_script("torchrun_single_node.sh", ["data.batch_size=8", "--resume"], tmp_path, bin_dir,
                        EXPERIMENT="wgan_gp_mnist", **env)
    assert result.returncode == 0, result.stderr
    assert calls(bin_dir, "torchrun") == [[
        "--standalone", f"--nproc_per_node={nproc}", "-m", "gan_lightning", "train", "wgan_gp_mnist",
        "data.batch_size=8", "--resume", f"trainer.devices={nproc}", "trainer.num_nodes=1", *LAUNCH_KEYS]]


def test_torchrun_multi_node_script_passes_the_node_and_rendezvous(tmp_path: Path) -> None:
    bin_dir = fake_bin(tmp_path / "bin", gpus=8)
    result = run_script("torchrun_multi_node.sh", ["run.dir=/shared/x"], tmp_path, bin_dir, NNODES="3",
                        NODE_RANK="1", MASTER_ADDR="node0")
    assert result.returncode == 0, result.stderr
    assert calls(bin_dir, "torchrun") == [[
        "--nnodes=3", "--node_rank=1", "--nproc_per_node=8", "--master_addr=node0", "--master_port=29500",
        "-m", "gan_lightning", "train", "dcgan_mnist", "run.dir=/shared/x", "trainer.devices=8",
        "trainer.num_nodes=3", *LAUNCH_KEYS]]
    missing = run_script("torchrun_multi_node.sh", [], tmp_path, bin_dir, MASTER_ADDR="node0")
    assert missing.returncode != 0 and "NODE_RANK: set it to the index of this node" in missing.stderr
    assert len(calls(bin_dir, "torchrun")) == 1


# --- the SLURM batch script ---------------------------------------------------------------------------------------
SLURM_ALLOCATION = {"SLURM_JOB_ID": "4242", "SLURM_NTASKS_PER_NODE": "2", "SLURM_NNODES": "3"}


def test_sbatch_requeues_after_a_stop_and_the_requeued_job_resumes(tmp_path: Path) -> None:
    bin_dir = fake_bin(tmp_path / "bin", exits={"srun": [138, 0]})
    run_dir = tmp_path / "runs" / "wgan_gp_mnist-4242"
    expected = ["gan-lightning", "train", "experiments/wgan_gp_mnist.yaml", "model.lr_g=1e-4",
                "run.dir=runs/wgan_gp_mnist-4242", "trainer.devices=2", "trainer.num_nodes=3", *LAUNCH_KEYS]
    env = {**SLURM_ALLOCATION, "EXPERIMENT": "experiments/wgan_gp_mnist.yaml"}

    first = run_script("slurm_train.sbatch", ["model.lr_g=1e-4"], tmp_path, bin_dir, **env)
    assert first.returncode == 138 and "requeueing job 4242 after exit status 138" in first.stderr
    assert calls(bin_dir, "srun") == [expected]  # nothing to resume yet
    assert calls(bin_dir, "scontrol") == [["requeue", "4242"]]

    # The stopped run left its checkpoint; SLURM starts the script again (same job id, same arguments).
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
    second = run_script("slurm_train.sbatch", ["model.lr_g=1e-4"], tmp_path, bin_dir, SLURM_RESTART_COUNT="1", **env)
    assert second.returncode == 0, second.stderr
    assert calls(bin_dir, "srun")[1] == [*expected, "--resume"]
    assert len(calls(bin_dir, "scontrol")) == 1  # finished: no further requeue


@pytest.mark.parametrize("status, requeued", [(143, True), (130, False), (1, False), (2, False)])
def test_sbatch_requeues_only_after_a_scheduler_stop(tmp_path: Path, status: int, requeued: bool) -> None:
    bin_dir = fake_bin(tmp_path / "bin", exits={"srun": [status]})
    result = run_script("slurm_train.sbatch", [], tmp_path, bin_dir, RUN_DIR=str(tmp_path / "mine"),
                        **SLURM_ALLOCATION)
    assert result.returncode == status
    assert calls(bin_dir, "srun")[0][3] == f"run.dir={tmp_path / 'mine'}"
    assert calls(bin_dir, "scontrol") == ([["requeue", "4242"]] if requeued else [])


def test_sbatch_refuses_a_run_dir_override(tmp_path: Path) -> None:
    bin_dir = fake_bin(tmp_path / "bin")
    result = run_script("slurm_train.sbatch", ["run.dir=elsewhere"], tmp_path, bin_dir, **SLURM_ALLOCATION)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "error: run.dir=elsewhere: set RUN_DIR=... instead (the requeued job looks for its checkpoint there)"]
    assert calls(bin_dir, "srun") == []


# --- the framework under srun and torchrun --------------------------------------------------------------------------
ONE_SRUN_TASK = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "gan-lightning", "SLURM_NTASKS": "1",
                 "SLURM_NTASKS_PER_NODE": "1", "SLURM_NNODES": "1", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
                 "SLURM_NODEID": "0", "SLURM_NODELIST": "localhost"}


def test_sigusr1_under_srun_saves_and_exits_138_and_the_requeued_job_resumes(fake_mnist: Path, tmp_path: Path,
                                                                              monkeypatch, capsys) -> None:
    """SLURM's warning signal is ours, not Lightning's auto-requeue (which would write hpc_ckpt_N.ckpt and call
    scontrol itself); the requeued incarnation takes over the lock its killed predecessor left on another node."""
    bin_dir = fake_bin(tmp_path / "bin")
    run = tmp_path / "run"
    environment = {**os.environ, **ONE_SRUN_TASK, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-m", "gan_lightning", "train", "dcgan_mnist", *tiny_overrides(fake_mnist, run, 100_000),
            "callbacks.samples.every_n_steps=1"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                               env=environment)
    try:
        _wait_for(run / "samples" / "step_0000002.png", process)
        assert (run / ".lock").read_text().split()[2:] == ["4242", "0"]
        process.send_signal(signal.SIGUSR1)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 138, err[-2000:]
    assert len(err.strip().splitlines()) == 1 and err.startswith("stopped: SIGUSR1 at batch "), err
    stopped_at = ckpt(run)["global_step"]
    assert not list(run.rglob("hpc_ckpt*")) and calls(bin_dir, "scontrol") == []

    # The incarnation that got SIGKILLed after the grace period left its lock, on another node.
    (run / ".lock").write_text("other-node 999 4242 0\n")
    for key, value in {**ONE_SRUN_TASK, "SLURM_RESTART_COUNT": "1"}.items():
        monkeypatch.setenv(key, value)
    assert main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, run, stopped_at + 2), "--resume"]) == 0
    assert ckpt(run)["global_step"] == stopped_at + 2 and not (run / ".lock").exists()


@pytest.mark.parametrize("env, devices, message", [
    ({"TORCHELASTIC_RUN_ID": "x", "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "GROUP_RANK": "0"}, 1,
     "error: trainer: You set `devices=1` and `num_nodes=1` in Lightning, but the product (1 * 1) does not match "
     "the world size (2)."),
    ({**ONE_SRUN_TASK, "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "2"}, 1,
     "error: trainer: You set `devices=1` in Lightning, but the number of tasks per node configured in SLURM "
     "`--ntasks-per-node=2` does not match. HINT: Set `devices=2`."),
    ({**{k: v for k, v in ONE_SRUN_TASK.items() if k != "SLURM_NTASKS_PER_NODE"}, "SLURM_NTASKS": "2"}, 2,
     "error: SLURM: You set `--ntasks=2` in your SLURM bash script, but this variable is not supported. HINT: Use "
     "`--ntasks-per-node=2` instead."),
    ({"TORCHELASTIC_RUN_ID": "x", "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "GROUP_RANK": "0"}, 2, None),
    ({**ONE_SRUN_TASK, "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "2"}, 2, None),
], ids=["torchrun-2-devices-1", "srun-2-devices-1", "srun-ntasks", "torchrun-2-devices-2", "srun-2-devices-2"])
def test_dry_run_checks_devices_against_the_launcher(fake_mnist: Path, tmp_path: Path, monkeypatch, capsys,
                                                     env: dict, devices: int, message: str | None) -> None:
    """Lightning itself checks only when fit launches, and with trainer.devices=1 not at all: every torchrun or
    srun process would train on its own, all into one run directory."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    run = tmp_path / "run"
    code = main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, run, 2), "trainer.accelerator=cpu",
                 f"trainer.devices={devices}", "--dry-run"])
    err = capsys.readouterr().err.strip()
    assert (code, err) == ((2, message) if message else (0, "")), err
    assert not run.exists()


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is not on PATH")
def test_torchrun_script_trains_two_cpu_processes_and_resumes(fake_mnist: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SLURM_")}
    environment.update(NPROC="2", PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    for steps, extra in ((4, []), (8, ["--resume"])):
        result = subprocess.run(["bash", str(SCRIPTS / "torchrun_single_node.sh"),
                                 *tiny_overrides(fake_mnist, run, steps), "trainer.accelerator=cpu", *extra],
                                cwd=REPO, env=environment, capture_output=True, text=True, timeout=240)
        assert result.returncode == 0, result.stderr[-2000:]
        checkpoint = ckpt(run)
        assert checkpoint["global_step"] == steps and int(checkpoint["state_dict"]["batches_seen"]) == steps
        assert len(checkpoint["rng_states_per_rank"]) == 2  # both ranks took part
    assert [entry.name for entry in (run / "checkpoints").iterdir()] == ["last.ckpt"]


def test_an_unloadable_nvml_check_is_dropped_and_a_loadable_one_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    import torch

    from gan_lightning import launch

    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    monkeypatch.setattr(ctypes, "CDLL", lambda name: object())  # NVML loads: a GPU machine
    assert not launch.skip_failing_nvml_check()
    assert os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] == "1"

    def missing(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", missing)
    assert launch.skip_failing_nvml_check()
    assert "PYTORCH_NVML_BASED_CUDA_CHECK" not in os.environ
    assert not launch.skip_failing_nvml_check()  # nothing left to drop


def test_train_drops_a_failing_nvml_check_before_the_first_batch(fake_mnist, tmp_path, monkeypatch) -> None:
    from gan_lightning import train as train_module
    from gan_lightning.errors import ConfigError

    calls = []

    def prepare(config):
        calls.append("prepare")
        raise ConfigError("stopped here")

    monkeypatch.setattr(train_module, "skip_failing_nvml_check", lambda: calls.append("nvml"))
    monkeypatch.setattr(train_module, "prepare", prepare)
    assert main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, tmp_path / "run", 1)]) == 2
    assert calls == ["nvml", "prepare"]
