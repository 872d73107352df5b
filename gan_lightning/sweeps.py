"""Hyperparameter sweeps in W&B's own sweep format: validated before anything starts, run by a W&B agent (online) or
by a local search with no server (grid or random over the same YAML).

A sweep file (``experiments/sweeps/*.yaml``) is a W&B sweep configuration whose ``command`` runs this CLI::

    command: [gan-lightning, train, wgan_gp_mnist, run.quiet=true, ${args_no_hyphens}]
    method: random
    metric: {name: val/fid, goal: minimize}
    parameters:
      model.lr_d: {values: [1.0e-4, 3.0e-4]}

The agent turns each trial's parameters into ``key=value`` words (``${args_no_hyphens}``), which are this CLI's
dotlist overrides, so parameters are named by dotted config keys. A trial names itself by the hyperparameters that
differ from the experiment's (``wgan_gp_mnist lr_d=0.0003 n_critic=3``) and trains in a directory of its own, so a
``run.dir`` for the whole sweep (in the command, or ``sweep --local`` overrides) is refused rather than sharing one.

A local sweep checks ``--jobs`` and ``--out`` before it writes anything and never writes over an earlier sweep; it
exits non-zero, with one line naming the failed trials, when any trial fails.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import random
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from gan_lightning import config as config_lib
from gan_lightning.compare import read_metrics
from gan_lightning.errors import ConfigError, GanLightningError
from gan_lightning.files import atomic_write
from gan_lightning.rundir import check_writable

METHODS = ("grid", "random", "bayes")
LOCAL_METHODS = ("grid", "random")
# Distributions the local search draws from (W&B's names); W&B online accepts more.
LOCAL_DISTRIBUTIONS = ("uniform", "log_uniform_values", "int_uniform", "categorical")
ARGS_MACRO = "${args_no_hyphens}"
# Keys that place or name a run: never part of a trial's name.
_NOT_HYPERPARAMETERS = ("run.", "callbacks.", "logger.")


@dataclass
class Sweep:
    path: Path
    spec: dict[str, Any]  # the YAML as a plain dict, W&B's sweep configuration
    experiment: str  # the word after "train" in the command

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        return self.spec["parameters"]

    @property
    def metric(self) -> tuple[str, str]:
        return self.spec["metric"]["name"], self.spec["metric"]["goal"]


def _fail(path: Path, message: str) -> GanLightningError:
    return ConfigError(f"{path}: {message}")


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file: its shape, its command, and every parameter value against the experiment's
    config (a key the config does not have, or a value of the wrong type, is one line naming both)."""
    path = resolve_sweep_path(path)
    try:
        spec = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as error:  # YAML syntax errors come from several libraries
        raise _fail(path, f"cannot parse YAML: {' '.join(str(error).split())[:200]}") from None
    if not isinstance(spec, dict):
        raise _fail(path, "expected a mapping (W&B sweep configuration)")
    method = spec.get("method")
    if method not in METHODS:
        raise _fail(path, f"method: {method!r}; accepted: {', '.join(METHODS)}")
    metric = spec.get("metric")
    if not (isinstance(metric, dict) and isinstance(metric.get("name"), str)
            and metric.get("goal") in ("minimize", "maximize")):
        raise _fail(path, "metric: expected {name: <logged scalar, e.g. val/fid>, goal: minimize | maximize}")
    command = spec.get("command")
    expected = f"expected a list like [gan-lightning, train, EXPERIMENT, {ARGS_MACRO}]"
    if not (isinstance(command, list) and len(command) > 3 and command[1] == "train" and ARGS_MACRO in command):
        raise _fail(path, f"command: {expected}")
    # The agent runs the command as written, and --local runs this CLI in its place: anything else is refused.
    if Path(str(command[0])).name != "gan-lightning":
        raise _fail(path, f"command: {str(command[0])!r} is not gan-lightning; {expected}")
    experiment = str(command[2])
    parameters = spec.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise _fail(path, "parameters: expected a mapping of dotted config keys to {values: [...]} or a distribution")
    fixed = [str(word) for word in command[3:] if "=" in str(word)]
    try:
        config_lib.load_experiment(experiment, fixed)
        refuse_shared_run_dir(fixed)
    except ConfigError as error:
        raise _fail(path, f"command: {error}") from None
    for key, block in parameters.items():
        for value in _candidate_values(path, key, block, method):
            try:
                config_lib.load_experiment(experiment, [*fixed, f"{key}={value}"])
            except ConfigError as error:
                raise _fail(path, f"parameters.{key}={value!r}: {error}") from None
    return Sweep(path, spec, experiment)


def refuse_shared_run_dir(overrides: list[str]) -> None:
    """One line if ``overrides`` (words given to every trial) set run.dir: every trial would train in that one
    folder, each over the last (trials get their own: ``trial-NNN`` under --out, or the agent's run id)."""
    run = config_lib.parse_overrides(overrides).get("run")
    if isinstance(run, DictConfig) and "dir" in run:
        raise ConfigError(f"run.dir={run.get('dir')} would put every trial in one folder; each trial trains in its "
                          "own (choose where with sweep --local --out)")


def resolve_sweep_path(name: str | Path) -> Path:
    """A sweep YAML path, or the name of one under sweeps/ in an experiment folder (``wgan_gp_mnist_lr``)."""
    path = Path(name)
    if path.is_file():
        return path
    if path.suffix not in (".yaml", ".yml") and len(path.parts) == 1:
        for folder, _ in config_lib.experiment_dirs():
            if (folder / "sweeps" / f"{path}.yaml").is_file():
                return folder / "sweeps" / f"{path}.yaml"
    shipped = sorted({p.stem for folder, _ in config_lib.experiment_dirs() for p in (folder / "sweeps").glob("*.yaml")})
    raise ConfigError(f"sweep file {name} does not exist; shipped sweeps: {', '.join(shipped) or 'none'}")


def _candidate_values(path: Path, key: str, block: Any, method: str) -> list[Any]:
    """The values to check a parameter with: all listed values, or a distribution's bounds."""
    where = f"parameters.{key}"
    if not isinstance(block, dict):
        raise _fail(path, f"{where}: expected a mapping ({{values: [...]}}, {{value: x}} or a distribution)")
    if "value" in block:
        return [block["value"]]
    if "values" in block:
        if not isinstance(block["values"], list) or not block["values"]:
            raise _fail(path, f"{where}.values: expected a non-empty list")
        return list(block["values"])
    if method == "grid":
        raise _fail(path, f"{where}: a grid needs values (or value), not a distribution")
    if "min" in block and "max" in block:
        low, high = block["min"], block["max"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or low >= high:
            raise _fail(path, f"{where}: min and max must be numbers with min < max, got {low!r}, {high!r}")
        return [low, high]
    raise _fail(path, f"{where}: expected values, value, or min and max (with a distribution)")


# --- what a trial is: its overrides, its command, its name ----------------------------------------------------


def agent_words(parameters: dict[str, Any]) -> list[str]:
    """``${args_no_hyphens}`` as the W&B agent expands it: ``key=value`` with Python's str of each value."""
    return [f"{key}={value}" for key, value in parameters.items()]


def trial_command(sweep: Sweep, parameters: dict[str, Any]) -> list[str]:
    """The sweep's command with the trial's words in place of ``${args_no_hyphens}``."""
    words: list[str] = []
    for word in sweep.spec["command"]:
        words += agent_words(parameters) if word == ARGS_MACRO else [str(word)]
    return words


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def trial_name(experiment: str, overrides: list[str]) -> str:
    """The experiment's name and the hyperparameters the overrides change (``wgan_gp_mnist lr_d=0.0003``)."""
    base = config_lib.flatten(config_lib.load_experiment(experiment))
    changed = config_lib.flatten(config_lib.load_experiment(experiment, overrides))
    differing = [f"{key.rsplit('.', 1)[-1]}={_short(changed[key])}" for key in changed
                 if not key.startswith(_NOT_HYPERPARAMETERS) and changed[key] != base.get(key)]
    return " ".join([Path(experiment).stem, *differing])


def agent_trial_overrides(experiment: str, overrides: list[str]) -> list[str]:
    """Under a W&B agent (WANDB_SWEEP_ID and WANDB_RUN_ID set), a trial trains in
    runs/<experiment>/sweep-<sweep id>/<run id> and is named by its hyperparameters, unless the overrides choose."""
    sweep_id, run_id = os.environ.get("WANDB_SWEEP_ID"), os.environ.get("WANDB_RUN_ID")
    if not (sweep_id and run_id):
        return []
    given = {item.split("=", 1)[0] for item in overrides}
    extra = []
    if "run.dir" not in given:
        extra.append(f"run.dir={Path('runs') / Path(experiment).stem / f'sweep-{sweep_id}' / run_id}")
    if "run.name" not in given:
        extra.append(f"run.name={trial_name(experiment, overrides)}")
    return extra


# --- the local search: grid or random over the same file, no server -------------------------------------------


def local_trials(sweep: Sweep, count: int | None, seed: int) -> list[dict[str, Any]]:
    """The trials' parameters: a grid in file order (the first ``count``), or ``count`` random draws."""
    method = sweep.spec["method"]
    if method not in LOCAL_METHODS:
        raise _fail(sweep.path, f"method: {method} needs W&B's search engine; --local runs "
                                f"{' and '.join(LOCAL_METHODS)} (or run the sweep online)")
    keys = list(sweep.parameters)
    if method == "grid":
        choices = [_candidate_values(sweep.path, key, sweep.parameters[key], "grid") for key in keys]
        grid = [dict(zip(keys, combination, strict=True)) for combination in itertools.product(*choices)]
        return grid[:count] if count else grid
    if not count:
        raise _fail(sweep.path, "method: random has no end: give --count")
    draw = random.Random(seed)
    samplers = {key: _sampler(sweep.path, key, sweep.parameters[key]) for key in keys}
    return [{key: samplers[key](draw) for key in keys} for _ in range(count)]


def _sampler(path: Path, key: str, block: dict[str, Any]) -> Callable[[random.Random], Any]:
    if "value" in block:
        return lambda draw: block["value"]
    if "values" in block:
        return lambda draw: draw.choice(block["values"])
    distribution = block.get("distribution", "uniform" if isinstance(block.get("min"), float) else "int_uniform")
    low, high = block["min"], block["max"]
    if distribution == "uniform":
        return lambda draw: draw.uniform(low, high)
    if distribution == "log_uniform_values":
        return lambda draw: math.exp(draw.uniform(math.log(low), math.log(high)))
    if distribution == "int_uniform":
        return lambda draw: draw.randint(int(low), int(high))
    raise _fail(path, f"parameters.{key}.distribution: {distribution!r}; --local draws from "
                      f"{', '.join(LOCAL_DISTRIBUTIONS)}")


def check_local(sweep: Sweep, out: Path, jobs: int, extra: list[str]) -> None:
    """What a local sweep refuses before it writes anything: ``--jobs`` below 1, an ``--out`` that is a file (or lies
    under one) or already holds a sweep (it would be written over), overrides for every trial that set run.dir or a
    swept parameter (they come last, so every trial would get the same value)."""
    if jobs < 1:
        raise GanLightningError(f"--jobs must be >= 1, got {jobs}")
    check_writable(out, "--out")
    earlier = sorted([*out.glob("trial-*"), *out.glob("trials.csv")]) if out.is_dir() else []
    if earlier:
        raise GanLightningError(f"--out {out} already holds a sweep ({earlier[0].name} ...); give another --out or "
                                "remove it")
    refuse_shared_run_dir(extra)
    swept = [key for key in config_lib.flatten(OmegaConf.to_container(config_lib.parse_overrides(extra)))
             if key in sweep.parameters]
    if swept:
        raise ConfigError(f"overrides: {swept[0]} is a parameter of the sweep; a value for every trial would make "
                          "them all the same")


def run_local(sweep: Sweep, out: Path, count: int | None, jobs: int, seed: int,
              extra: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the trials as normal CLI runs (W&B offline unless the environment says otherwise), ``jobs`` at a time,
    each in ``out/trial-NNN``; returns one record per trial (its parameters, exit status and scores). If any trial
    failed, the table is written and printed all the same, then one line says how many failed (GanLightningError)."""
    trials = local_trials(sweep, count, seed)
    check_local(sweep, out, jobs, extra or [])
    out.mkdir(parents=True, exist_ok=True)

    def run(index: int, parameters: dict[str, Any]) -> dict[str, Any]:
        run_dir = out / f"trial-{index:03d}"
        words = agent_words(parameters)
        command = [sys.executable, "-m", "gan_lightning", *trial_command(sweep, parameters)[1:],
                   f"run.dir={run_dir}", f"run.name={trial_name(sweep.experiment, words)}", *(extra or [])]
        env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
        with open(out / f"trial-{index:03d}.log", "w") as log:
            code = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
        return {"trial": run_dir.name, "exit": code, **parameters, **_scores(run_dir, *sweep.metric)}

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        records = list(pool.map(lambda item: run(*item), enumerate(trials)))
    failed = [record["trial"] for record in records if record["exit"]]
    if failed:  # the sweep did not do what was asked: its exit status says so, after the table of what it did
        print(results_table(sweep, records, out / "trials.csv"))
        raise GanLightningError(f"{len(failed)} of {len(records)} trials failed ({', '.join(failed)}); see their .log "
                                f"in {out}; table: {out / 'trials.csv'}")
    return records


def dry_run(sweep: Sweep, count: int | None, seed: int, extra: list[str], out: Path | None, jobs: int = 1
            ) -> list[str]:
    """What the sweep would run, checked without training: with ``out`` (--local), each trial's config is resolved
    and validated and the first trial is prepared as ``train --dry-run`` prepares a run (data, model, optimizers,
    trainer); online, the command with the parameters' first values is. Returns the trials' commands as lines."""
    from gan_lightning.train import prepare, silence_lightning

    if out is not None:
        trials = local_trials(sweep, count, seed)
        check_local(sweep, out, jobs, extra)
    else:
        trials = [{key: _candidate_values(sweep.path, key, block, sweep.spec["method"])[0]
                   for key, block in sweep.parameters.items()}]
    commands = []
    for index, parameters in enumerate(trials):
        words = [*trial_command(sweep, parameters)[1:], *extra]
        config = config_lib.load_experiment(sweep.experiment, words[2:])
        if index == 0:
            silence_lightning()
            prepare(config, dry_run=True)
        label = f"trial-{index:03d}" if out is not None else "a trial, e.g."
        commands.append(f"{label}: gan-lightning {' '.join(words)}")
    return commands


def _scores(run_dir: Path, metric: str, goal: str = "minimize") -> dict[str, Any]:
    """The metric's last and best logged values (best by the sweep's goal) from the run's metrics.csv (none from a
    metrics.csv that cannot be read: the trial is unscored)."""
    values = []
    if (run_dir / "metrics.csv").is_file():
        try:
            values = [value for _, value in read_metrics(run_dir / "metrics.csv").get(metric, [])]
        except GanLightningError:
            pass  # a metrics.csv that cannot be read: the trial is unscored (its exit status tells why)
    best = (max if goal == "maximize" else min)(values) if values else None
    return {metric: values[-1] if values else None, f"best {metric}": best}


def results_table(sweep: Sweep, records: list[dict[str, Any]], path: Path) -> str:
    """Trials sorted by the metric (failed or unscored last), written as CSV; returns the Markdown table."""
    metric, goal = sweep.metric
    scored = sorted((r for r in records if r[metric] is not None), key=lambda r: r[metric],
                    reverse=goal == "maximize")
    ordered = scored + [r for r in records if r[metric] is None]
    header = ["trial", "exit", *sweep.parameters, metric, f"best {metric}"]
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=header, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(ordered)
    atomic_write(path, lambda file: file.write(table.getvalue().encode()))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for record in ordered:
        cells = [_short(record[key]) if record.get(key) is not None else "" for key in header]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_online(sweep: Sweep, count: int | None, project: str | None, entity: str | None) -> str:
    """Create the sweep on the W&B server and run an agent here; returns the sweep id."""
    import wandb

    sweep_id = wandb.sweep(sweep.spec, project=project or "gan-lightning", entity=entity)
    wandb.agent(sweep_id, count=count, project=project or "gan-lightning", entity=entity)
    return sweep_id
