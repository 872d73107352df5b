"""Launching under torchrun and SLURM: what the framework does under those launchers.

SLURM's and torchrun's variables are set by hand; a fake ``scontrol`` first on PATH records any call.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gan_lightning.cli import main
from tests.conftest import tiny_overrides
from tests.test_reliability import _wait_for, ckpt

REPO = Path(__file__).resolve().parents[1]


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
