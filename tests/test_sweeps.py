"""Sweeps: W&B sweep files validated against the experiment, the agent's command, local grid/random search."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gan_lightning import sweeps
from gan_lightning.cli import main
from tests.conftest import tiny_overrides

SHIPPED = sorted((Path(__file__).resolve().parents[1] / "experiments" / "sweeps").glob("*.yaml"))


def write_sweep(path: Path, **changes) -> Path:
    spec = {"program": "gan-lightning", "method": "grid", "metric": {"name": "val/fid", "goal": "minimize"},
            "command": ["gan-lightning", "train", "dcgan_mnist", "${args_no_hyphens}"],
            "parameters": {"model.lr_d": {"values": [1.0e-4, 3.0e-4]}}}
    spec.update(changes)
    path.write_text(OmegaConf.to_yaml(OmegaConf.create(spec)))
    return path


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_each_shipped_sweep_validates_and_its_agent_command_is_a_dry_run(path: Path, capsys) -> None:
    """The words W&B's agent puts in place of ${args_no_hyphens} (its own function) are our dotlist overrides."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    sweep = sweeps.load_sweep(path)
    assert sweep.metric[0] in ("val/fid", "val/high_quality_pct")
    for parameters in sweeps.local_trials(sweep, 2, seed=0):
        words = create_sweep_command_args({"args": {k: {"value": v} for k, v in parameters.items()}})
        assert words["args_no_hyphens"] == sweeps.agent_words(parameters)
        command = sweeps.trial_command(sweep, parameters)
        assert command[:2] == ["gan-lightning", "train"]
        assert main([*command[1:], "--dry-run"]) == 0
        printed = OmegaConf.create(capsys.readouterr().out)
        for key, value in parameters.items():
            assert OmegaConf.select(printed, key) == value, key


BAD_SWEEPS = [
    ({"method": "hill_climb"}, "method: 'hill_climb'; accepted: grid, random, bayes"),
    ({"metric": {"name": "val/fid"}}, "metric: expected {name:"),
    ({"command": ["gan-lightning", "train", "dcgan_mnist"]}, "command: expected a list like"),
    ({"command": ["gan-lightning", "train", "nope", "${args_no_hyphens}"]}, "command: unknown experiment 'nope'"),
    ({"parameters": {"model.lr_dd": {"values": [1.0e-4]}}}, "parameters.model.lr_dd=0.0001: model.lr_dd: unknown key"),
    ({"parameters": {"model.n_critic": {"values": [1, "x"]}}}, "parameters.model.n_critic='x': model.n_critic:"),
    ({"parameters": {"model.lr_d": {"values": [-1.0]}}}, "parameters.model.lr_d=-1.0: model.lr_d: -1.0; accepted"),
    ({"parameters": {"model.lr_d": {"distribution": "uniform", "min": 1.0e-4, "max": 1.0e-3}}},
     "parameters.model.lr_d: a grid needs values (or value), not a distribution"),
    ({"method": "random", "parameters": {"model.lr_d": {"min": 1.0e-3, "max": 1.0e-4}}},
     "parameters.model.lr_d: min and max must be numbers with min < max"),
    ({"parameters": {"model.lr_d": 0.1}}, "parameters.model.lr_d: expected a mapping"),
    ({"command": ["python", "train", "dcgan_mnist", "${args_no_hyphens}"]},
     "command: 'python' is not gan-lightning; expected a list like [gan-lightning, train, EXPERIMENT"),
    ({"command": ["rm", "-rf", "train", "dcgan_mnist", "${args_no_hyphens}"]}, "command: expected a list like"),
    ({"command": ["gan-lightning", "train", "dcgan_mnist", "run.dir=/tmp/one", "${args_no_hyphens}"]},
     "command: run.dir=/tmp/one would put every trial in one folder; each trial trains in its own"),
]


@pytest.mark.parametrize("changes, message", BAD_SWEEPS, ids=[m.split(":")[0] for _, m in BAD_SWEEPS])
def test_a_bad_sweep_is_one_line_before_anything_starts(tmp_path: Path, capsys, changes: dict, message: str) -> None:
    path = write_sweep(tmp_path / "bad.yaml", **changes)
    assert main(["sweep", str(path), "--local", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: {path}: ") and message in err, err
    assert not (tmp_path / "out").exists()


def test_bayes_needs_the_server_and_random_needs_a_count(tmp_path: Path, capsys) -> None:
    bayes = write_sweep(tmp_path / "bayes.yaml", method="bayes")
    assert main(["sweep", str(bayes), "--local"]) == 2
    assert "method: bayes needs W&B's search engine; --local runs grid and random" in capsys.readouterr().err
    random_sweep = write_sweep(tmp_path / "random.yaml", method="random")
    assert main(["sweep", str(random_sweep), "--local"]) == 2
    assert "method: random has no end: give --count" in capsys.readouterr().err


def test_local_random_draws_are_seeded_and_within_the_bounds(tmp_path: Path) -> None:
    sweep = sweeps.load_sweep(write_sweep(tmp_path / "s.yaml", method="random", parameters={
        "model.lr_d": {"distribution": "log_uniform_values", "min": 1.0e-5, "max": 1.0e-3},
        "model.n_critic": {"distribution": "int_uniform", "min": 1, "max": 3},
        "model.loss": {"values": ["hinge", "least_squares"]}}))
    first, again = sweeps.local_trials(sweep, 50, seed=3), sweeps.local_trials(sweep, 50, seed=3)
    assert first == again and first != sweeps.local_trials(sweep, 50, seed=4)
    assert all(1e-5 <= t["model.lr_d"] <= 1e-3 and t["model.n_critic"] in (1, 2, 3) for t in first)
    assert {t["model.loss"] for t in first} == {"hinge", "least_squares"}
    assert {t["model.n_critic"] for t in first} == {1, 2, 3}


def test_local_sweep_runs_each_trial_in_its_own_directory_and_ranks_them(fake_mnist: Path, tmp_path: Path,
                                                                       capsys) -> None:
    path = write_sweep(tmp_path / "lr.yaml")
    out = tmp_path / "sweep"
    tiny = [item for item in tiny_overrides(fake_mnist, tmp_path / "unused", 2) if not item.startswith("run.dir")]
    metrics = ["callbacks.metrics.enabled=true", "callbacks.metrics.n_samples=40", "callbacks.metrics.n_real=48",
               "callbacks.metrics.batch_size=20", f"callbacks.metrics.cache_dir={tmp_path / 'cache'}"]
    assert main(["sweep", str(path), "--local", "--count", "2", "--jobs", "2", "--out", str(out), *tiny,
                 *metrics]) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert sorted(r["trial"] for r in rows) == ["trial-000", "trial-001"] and all(r["exit"] == "0" for r in rows)
    assert float(rows[0]["val/fid"]) <= float(rows[1]["val/fid"])  # ranked by the metric, best first
    for trial, lr in (("trial-000", 1e-4), ("trial-001", 3e-4)):
        config = OmegaConf.load(out / trial / "config.yaml")
        assert config.model.lr_d == pytest.approx(lr) and config.run.dir == str(out / trial)
        assert config.run.name == f"dcgan_mnist lr_d={lr:g}"  # named by what differs from the experiment
        assert (out / trial / "checkpoints" / "last.ckpt").is_file()
    assert "| trial | exit | model.lr_d | val/fid | best val/fid |" in printed and "2 trials in" in printed


def test_an_agent_trial_gets_its_own_directory_and_name(monkeypatch, capsys) -> None:
    monkeypatch.setenv("WANDB_SWEEP_ID", "abc123")
    monkeypatch.setenv("WANDB_RUN_ID", "run42")
    assert main(["train", "wgan_gp_mnist", "model.lr_d=0.0003", "model.n_critic=3", "--dry-run"]) == 0
    config = OmegaConf.create(capsys.readouterr().out)
    assert config.run.dir == str(Path("runs") / "wgan_gp_mnist" / "sweep-abc123" / "run42")
    assert config.run.name == "wgan_gp_mnist n_critic=3 lr_d=0.0003"
    assert main(["train", "wgan_gp_mnist", "run.dir=/tmp/mine", "--dry-run"]) == 0  # the user's choice stands
    assert OmegaConf.create(capsys.readouterr().out).run.dir == "/tmp/mine"


def test_online_sweep_creates_the_sweep_and_runs_an_agent(tmp_path: Path, monkeypatch, capsys) -> None:
    import wandb

    calls = []
    monkeypatch.setattr(wandb, "sweep", lambda spec, project, entity: calls.append(("sweep", spec, project)) or "s1")
    monkeypatch.setattr(wandb, "agent", lambda sweep_id, count, project, entity: calls.append(("agent", sweep_id,
                                                                                               count)))
    path = write_sweep(tmp_path / "s.yaml")
    assert main(["sweep", str(path), "--count", "3", "--project", "p"]) == 0
    assert calls[0][0] == "sweep" and calls[0][1]["parameters"] == {"model.lr_d": {"values": [1e-4, 3e-4]}}
    assert calls[0][2] == "p" and calls[1] == ("agent", "s1", 3)
    assert "sweep s1 done" in capsys.readouterr().out


def test_a_shipped_sweep_is_found_by_name(capsys) -> None:
    assert sweeps.resolve_sweep_path("wgan_gp_mnist_lr") == next(p for p in SHIPPED if p.stem == "wgan_gp_mnist_lr")
    assert main(["sweep", "nope_sweep", "--local"]) == 2
    err = capsys.readouterr().err
    assert "sweep file nope_sweep does not exist; shipped sweeps: dcgan_mnist_loss_sn_ema" in err
    assert main(["list"]) == 0
    assert "    sweeps: dcgan_mnist_loss_sn_ema, gan_grid_mode_collapse, wgan_gp_mnist_lr" in capsys.readouterr().out


@pytest.mark.parametrize("goal, best", [("minimize", 1.5), ("maximize", 9.0)])
def test_a_trials_best_value_follows_the_sweeps_goal(tmp_path: Path, goal: str, best: float) -> None:
    (tmp_path / "metrics.csv").write_text("step,val/x,train/d_loss\n0,,1\n9,9.0,\n19,1.5,\n29,4.0,\n")
    assert sweeps._scores(tmp_path, "val/x", goal) == {"val/x": 4.0, "best val/x": best}


LOCAL_REFUSALS = [
    # (arguments after the sweep file, exit code, the one line after "error: ")
    (["--jobs", "0"], 1, "--jobs must be >= 1, got 0"),
    (["--jobs", "-2"], 1, "--jobs must be >= 1, got -2"),
    (["--out", "{file}"], 1, "--out: cannot create {file}: {file} is a file, not a directory"),
    (["--out", "{file}/sub"], 1, "--out: cannot create {file}/sub: {file} is a file, not a directory"),
    (["--out", "{earlier}"], 1, "--out {earlier} already holds a sweep (trial-000 ...); give another --out or "
                                "remove it"),
    (["run.dir={tmp}/one"], 2, "run.dir={tmp}/one would put every trial in one folder; each trial trains in its own "
                               "(choose where with sweep --local --out)"),
    (["model.lr_d=0.01"], 2, "overrides: model.lr_d is a parameter of the sweep; a value for every trial would make "
                             "them all the same"),
]


@pytest.mark.parametrize("args, code, line", LOCAL_REFUSALS, ids=["jobs 0", "jobs -2", "out file", "out under file",
                                                                  "out holds a sweep", "run.dir", "swept key"])
def test_a_local_sweep_refuses_in_one_line_before_writing(tmp_path: Path, capsys, args, code, line) -> None:
    path = write_sweep(tmp_path / "lr.yaml")
    (tmp_path / "file").write_text("mine\n")
    (tmp_path / "earlier" / "trial-000").mkdir(parents=True)
    (tmp_path / "earlier" / "trial-000.log").write_text("first sweep\n")
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    fill = {"tmp": tmp_path, "file": tmp_path / "file", "earlier": tmp_path / "earlier"}
    out = [] if "--out" in args else ["--out", str(tmp_path / "out")]
    assert main(["sweep", str(path), "--local", *out, *[a.format(**fill) for a in args]]) == code
    assert capsys.readouterr().err == f"error: {line.format(**fill)}\n"
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "file").read_text() == "mine\n"
    assert (tmp_path / "earlier" / "trial-000.log").read_text() == "first sweep\n"


def test_a_sweep_with_a_failed_trial_exits_1_and_a_rerun_keeps_it(fake_mnist: Path, tmp_path: Path, capsys) -> None:
    """A batch of 100 passes the sweep's checks (the config alone is valid) but not the trial's: 64 samples."""
    path = write_sweep(tmp_path / "bs.yaml", parameters={"data.batch_size": {"values": [8, 100]}})
    out = tmp_path / "sweep"
    tiny = [item for item in tiny_overrides(fake_mnist, tmp_path / "unused", 2)
            if not item.startswith(("run.dir", "data.batch_size"))]
    assert main(["sweep", str(path), "--local", "--out", str(out), *tiny]) == 1
    printed = capsys.readouterr()
    assert printed.err == (f"error: 1 of 2 trials failed (trial-001); see their .log in {out}; table: "
                           f"{out / 'trials.csv'}\n")
    assert "| trial | exit | data.batch_size | val/fid | best val/fid |" in printed.out
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert [(r["trial"], r["exit"]) for r in rows] == [("trial-000", "0"), ("trial-001", "2")]
    assert "fewer than one batch of 100" in (out / "trial-001.log").read_text()
    kept = {p: p.read_bytes() for p in [out / "trials.csv", out / "trial-000.log", out / "trial-001.log"]}
    assert main(["sweep", str(path), "--local", "--out", str(out), *tiny]) == 1
    assert capsys.readouterr().err == (f"error: --out {out} already holds a sweep (trial-000 ...); give another --out "
                                       "or remove it\n")
    assert all(p.read_bytes() == data for p, data in kept.items())


def test_a_sweep_dry_run_checks_and_prints_the_trials_without_training(fake_mnist: Path, tmp_path: Path,
                                                                       capsys) -> None:
    spec = tmp_path / "losses.yaml"
    fixed = f"data.root={fake_mnist} data.download=false"
    command = ", ".join(["gan-lightning", "train", "dcgan_mnist", *fixed.split(), '"${args_no_hyphens}"'])
    spec.write_text(f"command: [{command}]\nmethod: grid\n" "metric: {name: val/fid, goal: minimize}\nparameters:\n"
                    "  model.loss: {values: [hinge, least_squares]}\n  model.lr_g: {values: [1.0e-4]}\n")
    out = tmp_path / "sweep"
    assert main(["sweep", str(spec), "--local", "--dry-run", "--out", str(out), "model.width_g=4"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"trial-000: gan-lightning train dcgan_mnist {fixed} model.loss=hinge model.lr_g=0.0001 model.width_g=4",
        f"trial-001: gan-lightning train dcgan_mnist {fixed} model.loss=least_squares model.lr_g=0.0001 "
        "model.width_g=4"]
    assert not out.exists()  # nothing trained, nothing written
    assert main(["sweep", str(spec), "--dry-run"]) == 0  # online: no server asked, the first values checked
    assert capsys.readouterr().out.splitlines() == [
        f"a trial, e.g.: gan-lightning train dcgan_mnist {fixed} model.loss=hinge model.lr_g=0.0001"]
    assert main(["sweep", str(spec), "--local", "--dry-run", "--out", str(out), "model.nope=1"]) == 2
    assert capsys.readouterr().err.startswith("error: model.nope: unknown key; accepted: name, loss,")
    # what the data cannot give fails here too, as train --dry-run does (the trial would fail at its start)
    assert main(["sweep", str(spec), "--local", "--dry-run", "--out", str(out), f"data.root={tmp_path / 'no'}"]) != 0
    assert capsys.readouterr().err.startswith("error: ")
