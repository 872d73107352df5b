"""Bad input, table-driven: every case exits with its code and one line naming the problem, and writes nothing.

A ``train`` case runs twice, with ``--dry-run`` and for real: ``--dry-run`` builds everything that can fail short
of training, so both fail the same way before anything reaches the run directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan_lightning.cli import main
from tests.conftest import tiny_overrides, write_fake_mnist

TRAIN_CASES = [
    # (overrides, exit code, words in the one line)
    (["model.lr_d=-1"], 2, "model.lr_d: -1.0; accepted: a float > 0"),
    (["model.beta1=1.5"], 2, "model.beta1: 1.5; accepted: a float in [0, 1)"),
    (["model.pack=3"], 2, "model.pack: 3 does not divide data.batch_size=8"),
    (["data.batch_size=100"], 2, "data.batch_size: 64 samples over 1 rank(s) is fewer than one batch of 100"),
    (["data.image_size=30"], 2, "model.name: dcgan cannot model samples of shape (1, 30, 30)"),
    (["model.lr_schedule=linear_decay", "trainer.max_steps=-1"], 2,
     "model.lr_schedule: linear_decay needs model.lr_decay_end or a trainer.max_steps > 0"),
    (["trainer.max_epochs=abc"], 2, "trainer.max_epochs: 'abc' is not valid; accepted: int or null"),
    (["trainer.precision=fp7"], 2, "trainer.precision: 'fp7' is not valid"),
    (["trainer.max_steps=0"], 2, "trainer.max_steps: 0; accepted: a positive int (training batches) or -1"),
    (["trainer.strategy=fsdp"], 2, "trainer.strategy: fsdp is not supported for GANs here"),
    (["trainer.sync_batchnorm=true", "trainer.accelerator=cpu", "trainer.devices=2"], 2,
     "trainer.sync_batchnorm: SyncBatchNorm needs GPU (cuda/xpu/hpu) ranks, these are cpu"),
    (["model.wdith_g=8"], 2, "model.wdith_g: unknown key; accepted: name, loss, n_critic"),
    (["model.lr_g=abc"], 2, "model.lr_g: Value 'abc' of type 'str' could not be converted to Float"),
    (["model.name=nope"], 2, "model.name: unknown name 'nope'"),
    (["model.max_nonfinite_batches=0"], 2, "model.max_nonfinite_batches: 0; accepted: an int >= 1"),
    (["model.compile=true", "model.channels_last=true"], 2, "model.compile: not together with model.channels_last"),
    (["callbacks.metrics.extractor=nope"], 2, "callbacks.metrics.extractor: 'nope'"),
    (["data.root={tmp}/nowhere"], 1, "MNIST files missing"),
    (["run.resume={tmp}/no.ckpt"], 2, "run.resume: checkpoint {tmp}/no.ckpt does not exist"),
    (["run.resume={empty}"], 1, "run.resume: {empty} is not a gan-lightning checkpoint (EOFError)"),
    (["run.resume={random}"], 1, "run.resume: {random} is not a gan-lightning checkpoint"),
    (["run.resume={truncated}"], 1, "run.resume: {truncated} is not a gan-lightning checkpoint"),
    (["run.dir={file}/run"], 1, "run.dir: cannot create {file}/run: {file} is a file, not a directory"),
    (["callbacks.metrics.enabled=true", "callbacks.metrics.cache_dir={file}/cache"], 1,
     "callbacks.metrics.cache_dir: cannot create {file}/cache: {file} is a file"),
]

OTHER_CASES = [
    (["sample", "{ckpt}", "--out", "{tmp}/x.jpgx"], 1, "--out {tmp}/x.jpgx: unknown extension '.jpgx'"),
    (["sample", "{ckpt}", "--out", "{file}/x.png"], 1, "--out: cannot create {file}: {file} is a file"),
    (["sample", "{ckpt}", "--n", "0", "--out", "{tmp}/x.png"], 1, "--n must be >= 1, got 0"),
    (["sample", "{tmp}/missing.ckpt", "--out", "{tmp}/x.png"], 1, "checkpoint {tmp}/missing.ckpt does not exist"),
    (["sample", "{empty}", "--out", "{tmp}/x.png"], 1, "{empty} is not a gan-lightning checkpoint"),
    (["sample", "{truncated}", "--out", "{tmp}/x.png"], 1, "{truncated} is not a gan-lightning checkpoint"),
    (["sample", "{wrong_model}", "--out", "{tmp}/x.png"], 1, "its weights do not fit model 'gan'"),
    (["evaluate", "{wrong_model}"], 1, "its weights do not fit model 'gan'"),
    (["evaluate", "{random}"], 1, "{random} is not a gan-lightning checkpoint"),
    (["evaluate", "{ckpt}", "--metrics", "fid,nope"], 2, "callbacks.metrics.metrics:"),
    (["evaluate", "{ckpt}", "--n", "8", "--cache-dir", "{file}/cache", "--metrics", "fid"], 1,
     "callbacks.metrics.cache_dir: cannot write real statistics to {file}/cache"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad_inputs")
    data = root / "data"
    write_fake_mnist(data)
    run = root / "good"
    assert main(["train", "dcgan_mnist", *tiny_overrides(data, run, 2)]) == 0
    ckpt = run / "checkpoints" / "last.ckpt"
    paths = {"data": data, "ckpt": ckpt, "empty": root / "empty.ckpt", "random": root / "random.ckpt",
             "truncated": root / "truncated.ckpt", "wrong_model": root / "wrong_model.ckpt", "file": root / "a_file"}
    paths["empty"].write_bytes(b"")
    paths["random"].write_bytes(os.urandom(4096))
    paths["truncated"].write_bytes(ckpt.read_bytes()[:2000])
    paths["file"].write_text("not a directory")
    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["hyper_parameters"]["config"]["name"] = "gan"  # a DCGAN's weights under the MLP GAN's name
    torch.save(checkpoint, paths["wrong_model"])
    return paths


def _fill(text: str, files: dict[str, Path], tmp: Path) -> str:
    return text.format(tmp=tmp, **{k: str(v) for k, v in files.items()})


def _one_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real"])
@pytest.mark.parametrize("overrides, code, words", TRAIN_CASES, ids=[" ".join(c[0]) for c in TRAIN_CASES])
def test_train_rejects(overrides, code, words, dry_run, files, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    args = ["train", "dcgan_mnist", *tiny_overrides(files["data"], run, 4), *[_fill(o, files, tmp_path)
                                                                             for o in overrides]]
    assert main([*args, "--dry-run"] if dry_run else args) == code
    err = _one_line(capsys)
    assert err.startswith("error: ") and _fill(words, files, tmp_path) in err, err
    assert not run.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written anywhere under the case's folder


@pytest.mark.parametrize("command, code, words", OTHER_CASES, ids=[" ".join(c[0][:1] + c[0][2:]) for c in OTHER_CASES])
def test_sample_and_evaluate_reject(command, code, words, files, tmp_path: Path, capsys) -> None:
    assert main([_fill(part, files, tmp_path) for part in command]) == code
    err = _one_line(capsys)
    assert err.startswith("error: ") and _fill(words, files, tmp_path) in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_data_errors_come_before_lightning_banners(tmp_path: Path) -> None:
    """Without --quiet too: a data problem is found before the Trainer exists, so nothing else is printed."""
    result = subprocess.run([sys.executable, "-m", "gan_lightning", "train", "dcgan_mnist",
                             f"data.root={tmp_path / 'nowhere'}", "data.download=false", f"run.dir={tmp_path / 'run'}"],
                            capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith("error: MNIST files missing")
    assert not (tmp_path / "run").exists()


def test_dry_run_on_a_valid_config_prints_it_and_writes_nothing(files, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "dcgan_mnist", *tiny_overrides(files["data"], run, 4), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "max_steps: 4" in out and "width_g: 4" in out
    assert not run.exists()
