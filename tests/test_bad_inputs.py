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
    (["callbacks.samples.n=0"], 2, "callbacks.samples.n: 0; accepted: an int >= 1"),
    (["model.width_d=-1"], 2, "model.width_d: -1; accepted: an int >= 1"),  # found by the property test
    (["model.width_g=0"], 2, "model.width_g: 0; accepted: an int >= 1"),
    (["callbacks.samples.nrow=0"], 2, "callbacks.samples.nrow: 0; accepted: an int >= 1"),
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
    (["data.root={file}"], 1, "data.root: {file} is a file, expected a folder"),
    (["data.batch_size=abc", "--nope"], 2, "gan-lightning train: unrecognized arguments: --nope (see gan-lightning "
     "train --help)"),
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
    # weight files no requested metric reads are refused, not silently unused
    (["evaluate", "{ckpt}", "--metrics", "fid,kid", "--vgg-weights", "{file}"], 1, "--vgg-weights: none of the "
     "requested metrics (fid,kid) uses it; for a latent model only ppl measures with VGG16/LPIPS (add it with "
     "--metrics)"),
    (["evaluate", "{ckpt}", "--lpips-weights", "{file}"], 1, "--lpips-weights: none of the requested metrics"),
    # argparse's errors: one line naming the command, no usage block
    (["sample"], 2, "gan-lightning sample: the following arguments are required: checkpoint, --out (see "
     "gan-lightning sample --help)"),
    (["sample", "{ckpt}", "--n", "abc", "--out", "{tmp}/x.png"], 2, "gan-lightning sample: argument --n: invalid int "
     "value: 'abc'"),
    (["translate", "{ckpt}", "--input", "{tmp}", "--out", "{tmp}/o", "--direction", "up"], 2,
     "gan-lightning translate: argument --direction: invalid choice: 'up'"),
    (["nope"], 2, "gan-lightning: argument COMMAND: invalid choice: 'nope'"),
    (["compare", "{run}", "--out", "{tmp}/c", "extra=1"], 2, "gan-lightning compare: unrecognized arguments: extra=1"),
    # evaluate scores the model as trained: model.* overrides are refused, not ignored
    (["evaluate", "{ckpt}", "model.width_g=64"], 2, "model.width_g: evaluate scores the model as trained and cannot "
     "change model.* keys; accepted overrides: data.*, callbacks.metrics.*, trainer.*"),
    # a folder given as a file and the other way round
    (["translate", "{ckpt}", "--input", "{file}", "--out", "{tmp}/o"], 1,
     "image folder {file} is a file, expected a folder"),
    (["sample", "{tmp}", "--out", "{tmp}/x.png"], 1, "checkpoint: checkpoint {tmp} is a folder, expected a "
     "checkpoint file"),
    # compare and sweep outputs: never inside what they read, never over a file
    (["compare", "{run}", "--out", "{run}/compare"], 1, "--out {run}/compare is inside the run directory {run}: the "
     "outputs would be written among its files; choose a folder outside it"),
    (["compare", "{run}", "--out", "{run}"], 1, "--out {run} is the run directory {run}"),
    (["compare", "{run}", "--out", "{file}"], 1, "--out: cannot create {file}: {file} is a file, not a directory"),
    (["sweep", "dcgan_mnist_loss_sn_ema", "--local", "--out", "{file}"], 1,
     "--out: cannot create {file}: {file} is a file, not a directory"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad_inputs")
    data = root / "data"
    write_fake_mnist(data)
    run = root / "good"
    assert main(["train", "dcgan_mnist", *tiny_overrides(data, run, 2)]) == 0
    ckpt = run / "checkpoints" / "last.ckpt"
    paths = {"data": data, "ckpt": ckpt, "run": run, "empty": root / "empty.ckpt", "random": root / "random.ckpt",
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


def _reads(out: str, what: str, path: str) -> str:
    return f"--out {out} is {what} {path}, which this command reads: choose another --out"


def _input_folder(out: str, folder: str, where: str = "is") -> str:
    return (f"--out {out} {where} the --input folder {folder}: the outputs would be written among its files; choose "
            "a folder outside it")


# Outputs (gan_lightning.outputs): never over a file the command reads, never a directory, within what the output
# can hold. Each is the exact line, and the user's files (everything the `files` fixture made) stay byte-for-byte.
OUTPUT_CASES = [
    (["sample", "{ckpt}", "--out", "{ckpt}"], _reads("{ckpt}", "the checkpoint", "{ckpt}")),
    (["sample", "{ckpt_pt}", "--out", "{ckpt_pt}"], _reads("{ckpt_pt}", "the checkpoint", "{ckpt_pt}")),
    (["sample", "{ckpt_pt}", "--out", "{data}/../model.pt"],
     _reads("{data}/../model.pt", "the checkpoint", "{ckpt_pt}")),
    (["sample", "{ckpt_pt}", "--out", "{ckpt_link}"], _reads("{ckpt_link}", "the checkpoint", "{ckpt_pt}")),
    (["sample", "{ckpt_link}", "--out", "{ckpt_pt}"], _reads("{ckpt_pt}", "the checkpoint", "{ckpt_link}")),
    (["sample", "{ckpt_pt}", "--out", "{hard_link}"], _reads("{hard_link}", "the checkpoint", "{ckpt_pt}")),
    (["sample", "{ckpt}", "--out", "{dir_png}"], "--out {dir_png} is a directory; give a file name, e.g. "
     "{dir_png}/out.png"),
    (["sample", "{ckpt}", "--out", "{tmp}"], "--out {tmp} is a directory; give a file name, e.g. {tmp}/out.png"),
    (["sample", "{ckpt}", "--nrow", "0", "--out", "{tmp}/x.png"], "--nrow must be >= 1, got 0"),
    (["sample", "{ckpt}", "--nrow", "-3", "--out", "{tmp}/x.png"], "--nrow must be >= 1, got -3"),
    (["sample", "{ckpt}", "--n", "-5", "--out", "{tmp}/x.png"], "--n must be >= 1, got -5"),
    (["sample", "{ckpt}", "--n", "10000000", "--out", "{tmp}/x.pt"],
     "--n: 10000000 samples of shape (1, 28, 28) make a 29.2 GiB tensor; a .pt output holds at most 4 GiB "
     "(torch.load reads it whole): draw fewer per file, with different --seed values"),
    (["sample", "{ckpt}", "--n", "10000000", "--out", "{tmp}/x.png"],
     "--n: a grid of 10,000,000 samples, 8 a row (--nrow), would be 242 x 37,500,002 pixels; a grid image has at "
     "most 89,478,485 pixels and 65,535 a side: lower --n or write a .pt"),
    (["sample", "{ckpt}", "--n", "200000", "--nrow", "500", "--out", "{tmp}/x.png"],
     "--n: a grid of 200,000 samples, 500 a row (--nrow), would be 15,002 x 12,002 pixels; a grid image has at "
     "most 89,478,485 pixels and 65,535 a side: lower --n or write a .pt"),
    (["evaluate", "{ckpt}", "--n", "1", "--metrics", "fid"],
     "--n must be >= 2 (fid estimates a covariance from the samples), got 1"),
    (["evaluate", "{ckpt}", "--n", "0", "--metrics", "kid"], "--n must be >= 2 (kid compares pairs of samples), got 0"),
    (["evaluate", "{ckpt}", "--n", "8", "--metrics", "is"], "--n must be >= 10 (is scores 10 splits of the samples), "
     "got 8"),
    (["evaluate", "{ckpt}", "--n", "8"], "--n must be >= 10 (is scores 10 splits of the samples), got 8"),  # fid,is,kid
    (["translate", "{ckpt}", "--input", "{images}", "--out", "{images}"], _input_folder("{images}", "{images}")),
    (["translate", "{ckpt}", "--input", "{images}", "--out", "{images}/../images"],
     _input_folder("{images}/../images", "{images}")),
    (["translate", "{ckpt}", "--input", "{images}", "--out", "{images_link}"],
     _input_folder("{images_link}", "{images}")),
    (["translate", "{ckpt}", "--input", "{images_link}", "--out", "{images}"],
     _input_folder("{images}", "{images_link}")),
    (["translate", "{ckpt}", "--input", "{images}", "--out", "{images}/translated"],
     _input_folder("{images}/translated", "{images}", "is inside")),
    (["translate", "{ckpt}", "--input", "{linked_images}", "--out", "{link_targets}"],
     _reads("{link_targets}/000.png", "the input image", "{linked_images}/000.png")),
]


@pytest.fixture(scope="module")
def user_files(files: dict[str, Path]) -> dict[str, Path]:
    """Beside the `files` fixture's: a checkpoint named .pt with a symlink and a hard link to it, a directory named
    like an image, a folder of images and a symlink to it, and a folder whose images are symlinks into another."""
    from PIL import Image

    root = files["ckpt"].parents[2]
    paths = {**files, "ckpt_pt": root / "model.pt", "ckpt_link": root / "link.pt", "hard_link": root / "hard.pt",
             "dir_png": root / "grid.png", "images": root / "images", "images_link": root / "images_link",
             "linked_images": root / "linked_images", "link_targets": root / "link_targets"}
    if not paths["ckpt_pt"].exists():
        paths["ckpt_pt"].write_bytes(files["ckpt"].read_bytes())
        paths["ckpt_link"].symlink_to(paths["ckpt_pt"])
        os.link(paths["ckpt_pt"], paths["hard_link"])
        paths["dir_png"].mkdir()
        for folder in ("images", "link_targets", "linked_images"):
            paths[folder].mkdir()
        for index in range(3):
            Image.new("L", (8, 8), 40 * index).save(paths["images"] / f"{index:03d}.png")
            Image.new("L", (8, 8), 50 * index).save(paths["link_targets"] / f"{index:03d}.png")
            (paths["linked_images"] / f"{index:03d}.png").symlink_to(paths["link_targets"] / f"{index:03d}.png")
        paths["images_link"].symlink_to(paths["images"])
    return paths


def snapshot(root: Path) -> dict[str, object]:
    """Every entry under ``root`` (links not followed): a file's bytes, a link's target, or "dir"."""
    entries: dict[str, object] = {}
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            path = Path(folder) / name
            key = str(path.relative_to(root))
            entries[key] = (os.readlink(path) if path.is_symlink() else "dir" if path.is_dir() else path.read_bytes())
    return entries


@pytest.mark.parametrize("command, line", OUTPUT_CASES, ids=[" ".join(c[0][:1] + c[0][2:]) for c in OUTPUT_CASES])
def test_outputs_never_replace_what_a_command_reads(command, line, user_files, tmp_path: Path, capsys) -> None:
    root = user_files["ckpt"].parents[2]
    before = snapshot(root)
    assert main([_fill(part, user_files, tmp_path) for part in command]) == 1
    assert capsys.readouterr().err == f"error: {_fill(line, user_files, tmp_path)}\n"
    assert snapshot(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _sample_while_the_writer_is_killed(ckpt: Path, out: Path, monkeypatch) -> int:
    """`sample` with a writer that writes half a file and is interrupted (Ctrl-C mid-save)."""
    def killed_save(obj, file, *args, **kwargs):
        file.write(b"half a tensor")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed_save)
    return main(["sample", str(ckpt), "--n", "4", "--out", str(out)])


def test_an_interrupted_sample_leaves_the_old_file_or_none(files, tmp_path: Path, monkeypatch, capsys) -> None:
    with monkeypatch.context() as patch:
        assert _sample_while_the_writer_is_killed(files["ckpt"], tmp_path / "new.pt", patch) == 130
    assert capsys.readouterr().err == "error: interrupted\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no 0-byte or partial file, no temporary
    (tmp_path / "old.pt").write_bytes(b"the user's earlier samples")
    with monkeypatch.context() as patch:
        assert _sample_while_the_writer_is_killed(files["ckpt"], tmp_path / "old.pt", patch) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.pt"]
    assert (tmp_path / "old.pt").read_bytes() == b"the user's earlier samples"


def test_sample_generates_in_batches_with_the_models_draws(files, tmp_path: Path, monkeypatch) -> None:
    """Batches of SAMPLE_BATCH: up to one batch the samples are the model's draw_samples; beyond, the latents of the
    later batches follow from the same seeded generator."""
    from gan_lightning import cli
    from gan_lightning.loading import load_model

    model = load_model(files["ckpt"])
    assert main(["sample", str(files["ckpt"]), "--n", "10", "--seed", "4", "--out", str(tmp_path / "one.pt")]) == 0
    monkeypatch.setattr(cli, "SAMPLE_BATCH", 4)
    assert main(["sample", str(files["ckpt"]), "--n", "10", "--seed", "4", "--out", str(tmp_path / "batched.pt")]) == 0
    one, batched = (torch.load(tmp_path / name, weights_only=True) for name in ("one.pt", "batched.pt"))
    assert torch.equal(one, model.draw_samples(10, 4))
    assert batched.shape == one.shape and torch.equal(batched[:4], model.draw_samples(4, 4))
    generator = torch.Generator().manual_seed(4)
    z = torch.cat([model.sample_latent(size, generator) for size in (4, 4, 2)])
    torch.testing.assert_close(batched, model.generate(z))  # one forward of 10: equal up to rounding


def _user_dataset(root: Path, splits: tuple[str, ...]) -> None:
    from PIL import Image

    for split in splits:
        (root / split).mkdir(parents=True)
        for index in range(2):
            Image.new("L", (28, 28), 60 + index).save(root / split / f"{index:04d}.png")  # the writer's names


@pytest.mark.parametrize("contents, listed", [
    (("trainA", "trainB", "testA"), "testA, trainA, trainB"),
    (("testB",), "testB"),
    (("notes.txt",), "notes.txt"),
    (("a", "b", "c", "d", "e", "trainA"), "a, b, c, d and 2 more"),
])
@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real"])
def test_digits_invert_download_never_replaces_a_users_files(contents, listed, dry_run, tmp_path: Path,
                                                             capsys) -> None:
    root = tmp_path / "digits"
    root.mkdir()
    _user_dataset(root, tuple(name for name in contents if "." not in name))
    for name in contents:
        if "." in name:
            (root / name).write_text("the user's notes")
    before = snapshot(root)
    run = tmp_path / "run"
    assert main(["train", "cyclegan_digits_invert", f"data.root={root}", f"run.dir={run}", "trainer.max_steps=1",
                 "--quiet", *(["--dry-run"] if dry_run else [])]) == 1
    assert capsys.readouterr().err == (
        f"error: data.root: {root} already holds {listed}; data.download=true writes the digits_invert task only "
        "into an empty or new folder: point data.root elsewhere, or set data.download=false to use what is there\n")
    assert snapshot(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits"]  # no run, no scratch folder


def test_digits_invert_is_written_whole_into_an_empty_root_or_not_at_all(tmp_path: Path, monkeypatch) -> None:
    from PIL import Image

    from datamodules.unpaired import write_digits_invert
    from gan_lightning import data_io

    digits = torch.arange(40, dtype=torch.uint8).reshape(40, 1, 1, 1).expand(40, 1, 28, 28).clone()
    monkeypatch.setattr(data_io, "load_digits", lambda: (digits, torch.zeros(40)))
    root = tmp_path / "empty"
    root.mkdir()
    write_digits_invert(root)
    assert sorted(p.name for p in root.iterdir()) == ["testA", "testB", "trainA", "trainB"]
    assert len(list((root / "trainA").iterdir())) == 40  # this small set: all 40 digits are train A
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # the scratch folder was renamed into place
    saved, calls = Image.Image.save, []

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return saved(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_digits_invert(tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # no partial dataset, no scratch folder


# --- a full disk ----------------------------------------------------------------------------------------------------


def _disk_full_at(call: int, monkeypatch) -> None:
    """``torch.save``'s ``call``-th write (1-based) fills the disk half-way through (ENOSPC)."""
    import errno

    real, calls = torch.save, []

    def save(obj, file, *args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            file.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(obj, file, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)


@pytest.mark.parametrize("summary_fits", [True, False], ids=["summary written", "summary cannot be written"])
def test_a_full_disk_at_a_checkpoint_is_one_line_and_the_records_match(summary_fits: bool, files, tmp_path: Path,
                                                                       monkeypatch, capsys) -> None:
    """The second checkpoint (batch 4) hits ENOSPC: one line, last.ckpt still the batch-2 one, no temporary, no lock,
    and summary.json says batch 2 and why it failed, or is gone when even it cannot be written (never stale)."""
    import errno
    import json

    from gan_lightning import rundir
    from gan_lightning.checkpoints import load_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text('{"batches": 99, "seconds": 1.0, "status": "finished"}\n')  # stale
    _disk_full_at(2, monkeypatch)
    if not summary_fits:
        def full(path, text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(rundir, "atomic_write_text", full)
    assert main(["train", "dcgan_mnist", *tiny_overrides(files["data"], run, 6)]) == 1
    last = run / "checkpoints" / "last.ckpt"
    assert capsys.readouterr().err == (f"error: cannot write checkpoint {last} at batch 4 (No space left on device); "
                                       "the previous one (batch 2) is intact\n")
    assert load_checkpoint(last)["global_step"] == 2
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]
    assert not (run / ".lock").exists()
    if summary_fits:
        summary = json.loads((run / "summary.json").read_text())
        assert summary["batches"] == 2 and summary["status"] == (
            f"failed: cannot write checkpoint {last} at batch 4 (No space left on device); the previous one (batch 2) "
            "is intact")
    else:
        assert not (run / "summary.json").exists()


@pytest.mark.parametrize("written", [None, 0], ids=["ENOSPC", "nothing written"])
def test_a_lock_taken_on_a_full_disk_is_not_left_behind(written, tmp_path: Path, monkeypatch) -> None:
    """O_CREAT succeeds on a full disk (an inode, no data block); the write of the owner then fails or writes
    nothing: no empty lock file may remain (it would read as stale, or block)."""
    import errno

    from gan_lightning.errors import GanLightningError
    from gan_lightning.rundir import RunDirLock

    def full_disk(handle: int, data: bytes) -> int:
        if written is None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return written

    lock = RunDirLock(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(os, "write", full_disk)
        with pytest.raises(GanLightningError) as error:
            lock.acquire()
    assert str(error.value) == f"run.dir: cannot take the lock {tmp_path / '.lock'} (No space left on device)"
    assert list(tmp_path.iterdir()) == [] and not lock.held
    with RunDirLock(tmp_path):  # and the directory can be taken once there is space
        assert (tmp_path / ".lock").read_text().split()[1] == str(os.getpid())


def test_warnings_before_an_error_are_dropped_and_after_success_shown(monkeypatch, capsys, recwarn) -> None:
    """A short command's warnings (Pillow's, the metrics' rank warnings) wait for its outcome: a failure is its one
    error line alone; a success shows them after its output."""
    import warnings

    from gan_lightning import cli
    from gan_lightning.errors import GanLightningError

    def failing(args) -> int:
        warnings.warn("FID: the covariance is rank-deficient", UserWarning, stacklevel=1)
        raise GanLightningError("the input is refused")

    def succeeding(args) -> int:
        warnings.warn("FID: the covariance is rank-deficient", UserWarning, stacklevel=1)
        print("scores")
        return 0

    monkeypatch.setattr(cli, "_cmd_list", failing)
    assert main(["list"]) == 1
    assert capsys.readouterr().err == "error: the input is refused\n" and len(recwarn) == 0
    monkeypatch.setattr(cli, "_cmd_list", succeeding)
    assert main(["list"]) == 0  # (pytest records shown warnings instead of printing them)
    assert capsys.readouterr().out == "scores\n"
    assert [str(w.message) for w in recwarn] == ["FID: the covariance is rank-deficient"]


def test_evaluate_on_a_test_set_smaller_than_is_splits_is_one_line(tmp_path: Path, capsys) -> None:
    """A translation model is scored on its test set (3 images here): IS's 10 splits cannot be made from it."""
    from tests.conftest import write_unpaired
    from tests.test_translation import tiny_cyclegan

    run = tmp_path / "run"
    assert main(tiny_cyclegan("cyclegan_horse2zebra", write_unpaired(tmp_path / "h2z"), run, 1)) == 0
    capsys.readouterr()
    before = sorted(p.name for p in run.iterdir())
    assert main(["evaluate", str(run / "checkpoints" / "last.ckpt"), "--metrics", "fid,is", "--extractor", "mnist",
                 "--cache-dir", str(tmp_path / "cache")]) == 1
    assert capsys.readouterr().err == ("error: --metrics fid,is: cyclegan is scored on its 3 evaluation images, fewer "
                                       "than 10 (is scores 10 splits of the samples); add images to its test set or "
                                       "leave that metric out\n")
    assert sorted(p.name for p in run.iterdir()) == before and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("experiment, override, words", [
    ("gan_mnist", "model.hidden_g=[-1]", "model.hidden_g: [-1]; accepted: a list of ints >= 1"),
    ("gan_mnist", "model.hidden_d=[0,4]", "model.hidden_d: [0, 4]; accepted: a list of ints >= 1"),
    ("cyclegan_digits_invert", "model.n_blocks=-1", "model.n_blocks: -1; accepted: null or an int >= 0"),
])
def test_network_sizes_are_refused_with_the_config(experiment, override, words, tmp_path: Path, capsys) -> None:
    """Sizes no network can have were a traceback from torch (negative widths) or silently no layers at all."""
    args = ["train", experiment, f"run.dir={tmp_path / 'run'}", f"data.root={tmp_path / 'data'}",
            "data.download=false", override, "--dry-run"]
    assert main(args) == 2
    err = _one_line(capsys)
    assert err == f"error: {words}", err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("override, words", [
    ("model.latent_dim=9223372036854775808", "TypeError"),  # past int64: torch cannot even name the size
    ("model.width_g=100000000", "RuntimeError"),  # terabytes of weights
])
def test_network_sizes_torch_cannot_allocate_are_one_line(override, words, tmp_path: Path, capsys) -> None:
    assert main(["train", "dcgan_digits", f"run.dir={tmp_path / 'run'}", override, "--dry-run"]) == 2
    err = _one_line(capsys)
    assert err.startswith("error: model: dcgan's networks cannot be built with these sizes (" + words), err
    assert list(tmp_path.iterdir()) == []
