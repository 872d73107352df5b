"""The bad-input contract as a property (Hypothesis): whatever a user types, a command either succeeds with its
documented outputs, or prints exactly one ``error:`` line, exits 1 or 2 and writes nothing; never a traceback.

Overrides for ``train --dry-run`` are drawn from the experiment's schema (every key of dcgan_mnist's resolved config,
some trainer keys, an unknown key) with values of the right and the wrong types: 0, negatives, huge numbers, NaN,
empty and unicode strings, null. Arguments of sample / evaluate / translate / compare / sweep are drawn from the
values each option takes and the paths a user could hand in (the checkpoint itself, a folder, a file, a missing
path). Bounded so the suite stays fast and reproducible: few examples, derandomized, no deadline; numbers that would
be legitimate but slow (evaluate --n 10**7) are not drawn.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import traceback
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from gan_lightning import config as config_lib
from gan_lightning.cli import main
from tests.conftest import tiny_overrides, write_fake_mnist

BOUNDED = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

INTS = st.sampled_from([0, -1, -7, 1, 2, 3, 10**12, 2**63, -(2**63)])
FLOATS = st.sampled_from([0.0, -1.0, 0.5, 1e-8, 1e308, float("nan"), float("inf"), float("-inf")])
TEXTS = st.sampled_from(["", " ", "abc", "ünïcødé ✓", "null", "[1, 2]", "{a: 1}", "1e-4", "true", "../..", "${oops}"])
VALUES = st.one_of(INTS, FLOATS, TEXTS, st.booleans(), st.text(max_size=6))


def _schema_keys() -> list[str]:
    keys = list(config_lib.flatten(OmegaConf.to_container(config_lib.load_experiment("dcgan_mnist", []))))
    return [*keys, "trainer.max_epochs", "trainer.precision", "trainer.strategy", "trainer.num_nodes",
            "trainer.gradient_clip_val", "model.no_such_key"]


def _value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Fake MNIST, a trained tiny DCGAN, a folder of images and a plain file: what the drawn arguments point at."""
    from PIL import Image

    root = tmp_path_factory.mktemp("property")
    write_fake_mnist(root / "data")
    run = root / "run"
    assert main(["train", "dcgan_mnist", *tiny_overrides(root / "data", run, 2)]) == 0
    (root / "images").mkdir()
    for index in range(2):
        Image.new("L", (8, 8), 60 * index).save(root / "images" / f"{index}.png")
    (root / "file.txt").write_text("a user's file")
    return {"root": root, "data": root / "data", "run": run, "ckpt": run / "checkpoints" / "last.ckpt",
            "images": root / "images", "file": root / "file.txt"}


def _snapshot(*folders: Path) -> dict[str, bytes | str]:
    entries: dict[str, bytes | str] = {}
    for folder in folders:
        for path in folder.rglob("*"):
            entries[str(path)] = "dir" if path.is_dir() else path.read_bytes()
    return entries


def _run(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """``main(argv)`` in ``cwd``: (exit code, stdout, stderr); an exception escaping main is a failure with its
    traceback."""
    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except BaseException:  # noqa: BLE001 - the property: nothing but a return code leaves main
        pytest.fail(f"{argv} raised instead of one error line:\n{traceback.format_exc()}")
    finally:
        os.chdir(previous)
    return code, out.getvalue(), err.getvalue()


def _assert_contract(argv: list[str], code: int, out: str, err: str, before: dict, after: dict,
                     allowed: set[str]) -> None:
    """Exit 0 (the caller checks the documented outputs; new entries only at or under the ``allowed`` paths, and
    nothing changed), or exactly one ``error:`` line with exit 1 or 2 and nothing written."""
    if code == 0:
        def expected(path: str) -> bool:
            return any(path == p or path.startswith(p + os.sep) for p in allowed)

        unexpected = [path for path in set(after) - set(before) if not expected(path)]
        assert not unexpected, (argv, sorted(unexpected))
        changed = [path for path, content in before.items() if after.get(path) != content and not expected(path)]
        assert not changed, (argv, changed)  # nothing the command does not own replaced or lost
        return
    assert code in (1, 2), (argv, code, err)
    assert err.startswith("error: ") and err.count("\n") == 1, (argv, err)
    assert "Traceback" not in err + out, (argv, err)
    assert after == before, (argv, sorted(set(after) ^ set(before)))


@settings(BOUNDED, max_examples=60)  # a dry run takes ~0.2 s
@given(overrides=st.lists(st.tuples(st.sampled_from(_schema_keys()), VALUES), min_size=1, max_size=2))
def test_train_dry_run_on_drawn_overrides(made, overrides) -> None:
    work = Path(tempfile.mkdtemp(dir=made["root"]))
    try:
        drawn = [f"{key}={_value(value)}" for key, value in overrides]
        argv = ["train", "dcgan_mnist", *tiny_overrides(made["data"], work / "run", 2), *drawn, "--dry-run"]
        before = _snapshot(made["root"])
        code, out, err = _run(argv, work)
        event(f"train --dry-run exit {code}")
        _assert_contract(argv, code, out, err, before, _snapshot(made["root"]), set())
        if code == 0:  # the documented output: the resolved config, which holds the drawn values
            resolved = config_lib.flatten(OmegaConf.to_container(OmegaConf.create(out)))
            assert all(key in resolved or key.startswith("trainer.") for key, _ in overrides), (argv, out)
    finally:
        shutil.rmtree(work)


def _paths(made: dict[str, Path], work: Path, suffix: str) -> st.SearchStrategy[str]:
    """Where an output or input option could point: a new file, the checkpoint, a folder, a user's file, a missing
    folder's child, a path through a file."""
    return st.sampled_from([*[str(work / f"new{suffix}")] * 4, str(made["ckpt"]), str(work), str(made["file"]),
                            str(work / "missing" / f"x{suffix}"), str(made["file"] / "x"), str(made["images"]),
                            str(made["run"]), str(work / f"x{suffix}x"), ""])


@st.composite
def _command(draw, made: dict[str, Path], work: Path) -> tuple[list[str], set[str]]:
    """(argv, the paths a success may create) for one of sample / evaluate / translate / compare / sweep."""
    name = draw(st.sampled_from(["sample", "sample", "evaluate", "translate", "compare", "sweep"]))
    ckpt = draw(st.sampled_from([str(made["ckpt"])] * 3 + [str(made["file"]), str(work), str(work / "no.ckpt")]))
    if name == "sample":
        out = draw(st.one_of(_paths(made, work, ".png"), _paths(made, work, ".pt")))
        argv = ["sample", ckpt, "--out", out, "--n", str(draw(st.sampled_from([-1, 0, 1, 3, 5, 10**7, 10**12])))]
        options = {"--nrow": st.sampled_from([2, 4, 0, -3, 10**12]), "--seed": st.sampled_from([0, 7, 2**63, -1]),
                   "--label": INTS, "--arithmetic": st.sampled_from(["1,2,3", "1,2", "a,b,c", ""])}
        for option in draw(st.lists(st.sampled_from(sorted(options)), max_size=2, unique=True)):
            argv += [option, _value(draw(options[option]))]
        if draw(st.booleans()):
            argv.append("--interpolate")
        return argv, {out}
    if name == "evaluate":
        argv = ["evaluate", ckpt, "--extractor", draw(st.sampled_from(["mnist", "nope", ""])),
                "--cache-dir", draw(st.sampled_from([str(work / "cache"), str(made["file"] / "cache")]))]
        for option, values in (("--n", st.sampled_from([-1, 0, 1, 2, 10, 16])),
                               ("--metrics", st.sampled_from(["fid", "kid", "is", "fid,kid", "", "nope", "fïd"])),
                               ("--n-real", st.sampled_from([-1, 0, 1, 16])), ("--batch-size", INTS)):
            if draw(st.booleans()):
                argv += [option, _value(draw(values))]
        argv += draw(st.lists(st.sampled_from(["model.width_g=8", "data.batch_size=0", "callbacks.metrics.seed=x",
                                               "data.root=" + str(made["file"]), "nope=1"]), max_size=1))
        # the report beside the run (only the offline extractor can succeed here), the real statistics
        return argv, {str(made["run"] / "evaluation_step0000002_mnist.json"), str(work / "cache")}
    if name == "translate":
        argv = ["translate", ckpt, "--input", draw(_paths(made, work, "")), "--out", draw(_paths(made, work, "")),
                "--batch-size", _value(draw(INTS))]
        if draw(st.booleans()):
            argv += ["--direction", draw(st.sampled_from(["AtoB", "BtoA", "up"]))]
        return argv, set()  # a DCGAN checkpoint translates nothing: never a success
    if name == "compare":
        runs = draw(st.lists(st.sampled_from([str(made["run"]), str(made["file"]), str(work / "none"), str(work)]),
                             min_size=1, max_size=2))
        out = draw(_paths(made, work, ""))
        return ["compare", *runs, "--out", out], {out}
    sweep_file = work / "sweep.yaml"
    sweep_file.write_text(draw(st.sampled_from(["", "method: grid\n", "{{{", "method: grid\ncommand: [rm, -rf]\n"])))
    argv = ["sweep", draw(st.sampled_from([str(sweep_file), "no_such_sweep", str(made["file"])])), "--local",
            "--jobs", _value(draw(INTS)), "--out", draw(_paths(made, work, ""))]
    return argv, set()  # none of these sweep files is valid: never a success (a valid one would train)


@settings(BOUNDED, max_examples=40)
@given(data=st.data())
def test_commands_on_drawn_arguments(made, data) -> None:
    work = Path(tempfile.mkdtemp(dir=made["root"]))
    try:
        argv, allowed = data.draw(_command(made, work))
        before = _snapshot(made["root"])
        code, out, err = _run(argv, work)
        event(f"{argv[0]} exit {code}")  # the mix of successes and refusals (pytest --hypothesis-show-statistics)
        _assert_contract(argv, code, out, err, before, _snapshot(made["root"]), allowed)
        if code == 0 and argv[0] == "sample":
            assert Path(argv[3]).is_file() and f"samples to {argv[3]}" in out
        if code == 0 and argv[0] == "compare":
            assert (Path(argv[-1]) / "compare.csv").is_file()
    finally:
        shutil.rmtree(work)
