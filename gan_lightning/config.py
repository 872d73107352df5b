"""Experiment configs: YAML files validated against structured (dataclass) schemas.

An experiment has six sections: ``model``, ``data``, ``trainer``, ``callbacks``, ``logger`` and ``run``.
``model`` and ``data`` are checked against the ``Config`` dataclass of the class their ``name`` selects in the
registry, ``trainer`` against ``lightning.Trainer``'s keyword arguments, the rest against the dataclasses
below. Every problem becomes a ``ConfigError`` whose message is one line naming the key and what is
accepted, raised before anything is trained or written.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from gan_lightning import registry
from gan_lightning.errors import ConfigError, check_values

# The shipped experiments: experiments/ beside the package in a source checkout (and editable installs); a regular
# `pip install .` puts a copy under <prefix>/share/gan-lightning/experiments (setup.cfg's data_files).
EXPERIMENTS_DIR = Path(__file__).resolve().parents[1] / "experiments"
INSTALLED_EXPERIMENTS_DIR = Path(sys.prefix) / "share" / "gan-lightning" / "experiments"
EXPERIMENTS_ENV = "GAN_LIGHTNING_EXPERIMENTS"  # the user's own experiment folders, os.pathsep-separated, first


def experiment_dirs() -> list[tuple[Path, str]]:
    """(folder, where it comes from) in lookup order: the first folder holding NAME.yaml defines NAME."""
    user = [Path(part).expanduser() for part in os.environ.get(EXPERIMENTS_ENV, "").split(os.pathsep) if part]
    shipped = EXPERIMENTS_DIR if EXPERIMENTS_DIR.is_dir() else INSTALLED_EXPERIMENTS_DIR
    return [(folder, f"${EXPERIMENTS_ENV}") for folder in user] + [(shipped, "shipped")]


def experiment_summary(path: Path) -> tuple[str | None, str]:
    """(model.name, the first sentence of the header comment) of an experiment file, read without validating it;
    (None, why) for a file that is not a readable experiment."""
    try:
        text = path.read_text()
        raw = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        return None, f"unreadable ({type(error).__name__})"
    model = raw.get("model") if isinstance(raw, dict) else None
    name = model.get("name") if isinstance(model, dict) else None
    header = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        header.append(line.lstrip("#").strip())
    prose = " ".join(" ".join(header).split())
    # A sentence ends at ". ", except after an abbreviation ("et al. 2015", "e.g. 32").
    first = re.split(r"(?<!\bal)(?<!\be\.g)(?<!\bi\.e)(?<!\bcf)(?<!\bvs)\.\s+", prose, maxsplit=1)[0].rstrip(".")
    return (str(name) if name is not None else None), first or "(no header comment)"


def experiment_sources() -> dict[str, Path]:
    """Every experiment name and the file that defines it (user folders shadow the shipped ones)."""
    found: dict[str, Path] = {}
    for folder, _ in experiment_dirs():
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            found.setdefault(path.stem, path)
    return dict(sorted(found.items()))


@dataclass
class SamplesCallbackConfig:
    enabled: bool = True  # write sample grids to run.dir/samples during training
    every_n_steps: int = 200  # training batches between two grids
    n: int = 64  # images in the grid (a fixed latent batch, so grids are comparable over time)
    nrow: int = 8  # images per grid row


@dataclass
class CheckpointCallbackConfig:
    every_n_steps: int = 500  # training batches between two saves of checkpoints/last.ckpt
    monitor: str | None = None  # e.g. val/fid: also keep the best checkpoints by that metric
    mode: str = "min"  # min | max: which end of callbacks.checkpoint.monitor is best
    save_top_k: int = 1  # best checkpoints kept by callbacks.checkpoint.monitor


@dataclass
class MetricsCallbackConfig:
    """FID / IS / KID during training (and the defaults of ``gan-lightning evaluate``)."""

    enabled: bool = False  # evaluate during training (val/* scalars, run.dir/metrics/step_N.json)
    metrics: str = "fid,is,kid"  # comma-separated: fid, is, kid, precision, recall, density, coverage, intra_fid, cas
    every_n_steps: int = 1000  # training batches between evaluations (and one at the end)
    n_samples: int = 5000  # generated samples per evaluation
    n_real: int | None = 10000  # real samples for the cached statistics (null = the whole dataset)
    extractor: str = "mnist"  # mnist (offline, shipped classifier) | inception (the standard FID network)
    inception_weights: str | None = None  # pt_inception-2015-12-05 file; null = torch hub cache/download
    # resize before the extractor: antialias (torch bilinear, antialiased) | tf (TF1 bilinear: torch-fidelity,
    # torchmetrics, TTUR) | clean (clean-fid's PIL bicubic); part of the real statistics' cache key
    protocol: str = "antialias"
    cache_dir: str | None = None  # real statistics cache; null = $GAN_LIGHTNING_CACHE or ~/.cache/gan_lightning
    batch_size: int = 500  # samples per forward of the feature extractor
    seed: int = 0  # latents of the evaluated samples: the same every evaluation
    precision_recall_k: int = 3  # neighbours per manifold ball for precision/recall (Kynkaanniemi et al. 2019)
    density_coverage_k: int = 5  # neighbours per real ball for density/coverage (Naeem et al. 2020)
    # classification accuracy score (metric "cas", digit models): a fixed classifier trained on cas_per_class
    # generated digits per class vs on as many real ones, both tested on the MNIST test split under cas_test_root
    cas_per_class: int = 500
    cas_epochs: int = 10  # cas: epochs of each classifier's training
    cas_test_root: str | None = None  # folder holding MNIST/raw/t10k-*-ubyte[.gz] (or the files themselves)
    # perceptual path length (metric "ppl", models with a mapping network): torchvision's vgg16 file for the
    # LPIPS-style distance; null = the MNIST net's distance (one-channel models only)
    vgg_weights: str | None = None
    # LPIPS's learned per-channel weights for VGG16 (the lpips package's weights/v0.1/vgg.pth), used with vgg_weights:
    # ppl on learned LPIPS, and super-resolution evaluate reports LPIPS; null = ppl on the unweighted (baseline) LPIPS
    lpips_weights: str | None = None


@dataclass
class CallbacksConfig:
    samples: SamplesCallbackConfig = field(default_factory=SamplesCallbackConfig)
    checkpoint: CheckpointCallbackConfig = field(default_factory=CheckpointCallbackConfig)
    metrics: MetricsCallbackConfig = field(default_factory=MetricsCallbackConfig)


@dataclass
class WandbConfig:
    enabled: bool = False  # log to Weights & Biases
    project: str = "gan-lightning"  # W&B project
    entity: str | None = None  # W&B team or user; null = the account's default
    mode: str | None = None  # online | offline | disabled; null = $WANDB_MODE, else online
    group: str | None = None  # default: the model name, so variants line up on one dashboard
    job_type: str = "train"  # W&B job type of the run
    tags: list[str] = field(default_factory=list)  # added to the automatic ones: dataset, precision, devices
    log_model: bool = False  # checkpoints (last and best) uploaded as W&B artifacts at the end of the run


@dataclass
class LoggerConfig:
    csv: bool = True  # run.dir/metrics.csv
    tensorboard: bool = False  # run.dir/tensorboard event files
    wandb: WandbConfig = field(default_factory=WandbConfig)


@dataclass
class RunConfig:
    name: str = "run"  # the run's name (run.dir, W&B run name)
    dir: str | None = None  # default: runs/<name>
    seed: int = 0  # seed of every random draw (weights, data order, latents)
    resume: str | None = None  # a checkpoint path, or "last" for <dir>/checkpoints/last.ckpt
    quiet: bool = False  # no progress bar or model summary (CI, sweeps)
    # auto: a bar on a terminal, plain lines when stdout is redirected (nohup, SLURM, CI) | bar | lines | none
    progress: str = "auto"
    progress_every: int = 100  # lines: training batches between two progress lines (and one at the last batch)
    keep_freed_memory: bool = True  # glibc keeps freed blocks for the next batch (gan_lightning/allocator.py)


# Sections validated here; model/data/trainer are validated against classes chosen at run time.
_FIXED_SECTIONS = {"callbacks": CallbacksConfig, "logger": LoggerConfig, "run": RunConfig}
SECTIONS = ("model", "data", "trainer", "callbacks", "logger", "run")
# Trainer arguments the framework owns: setting them in YAML would silently fight the run directory.
_RESERVED_TRAINER_KEYS = {"logger", "callbacks", "default_root_dir", "enable_checkpointing", "enable_progress_bar",
                          "enable_model_summary"}
_WANDB_MODES = ("online", "offline", "disabled")
PROGRESS_MODES = ("auto", "bar", "lines", "none")  # run.progress (gan_lightning/callbacks/progress.py)


def resolve_experiment_path(experiment: str) -> Path:
    """A YAML path, or the name of a file under experiments/ (without .yaml)."""
    candidate = Path(experiment)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if not candidate.is_file():
            raise ConfigError(f"experiment file {experiment} does not exist")
        return candidate
    named = experiment_sources().get(experiment)
    if named is None:
        accepted = ", ".join(experiment_names())
        raise ConfigError(f"unknown experiment {experiment!r}; accepted: {accepted} or a YAML path")
    return named


def experiment_names() -> list[str]:
    return list(experiment_sources())


def _one_line(error: OmegaConfBaseException) -> str:
    """omegaconf appends 'full_key: ... object_type=...' lines; the first line is the message."""
    text = str(getattr(error, "msg", None) or error).strip().splitlines()
    return " ".join(text[0].split()) if text else type(error).__name__


def merge_schema(schema: type, values: Any, section: str) -> DictConfig:
    """Merge user values into a dataclass schema; omegaconf rejects unknown keys and wrong types."""
    if values is None:
        values = {}
    if not isinstance(values, (dict, DictConfig)):
        raise ConfigError(f"{section}: expected a mapping, got {type(values).__name__}")
    base = OmegaConf.structured(schema)
    try:
        return OmegaConf.merge(base, values)
    except ConfigKeyError as error:
        key = f"{section}.{error.full_key}" if error.full_key else section
        accepted = ", ".join(f.name for f in dataclasses.fields(_schema_at(schema, error.full_key)))
        raise ConfigError(f"{key}: unknown key; accepted: {accepted}") from None
    except ValidationError as error:
        expected = _expected_type(schema, error.full_key)
        raise ConfigError(f"{section}.{error.full_key}: {_one_line(error)}{expected}") from None
    except OmegaConfBaseException as error:
        raise ConfigError(f"{section}: {_one_line(error)}") from None


def _schema_at(schema: type, dotted_key: str) -> type:
    """The dataclass that owns the last component of ``dotted_key`` (for the list of accepted keys); a
    ``dict[str, Dataclass]`` field (named entries, e.g. ``data.test_sets.Set5.hr``) is followed through its key."""
    parts = dotted_key.split(".")[:-1] if dotted_key else []
    index = 0
    while index < len(parts):
        nested = _type_hints(schema).get(parts[index])
        arguments = typing.get_args(nested)
        if typing.get_origin(nested) is dict and len(arguments) == 2 and dataclasses.is_dataclass(arguments[1]):
            nested, index = arguments[1], index + 1  # the next part names an entry of the mapping
        if not (isinstance(nested, type) and dataclasses.is_dataclass(nested)):
            break
        schema, index = nested, index + 1
    return schema


def _type_hints(schema: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(schema)
    except Exception:  # forward references we cannot resolve: fall back to no hint
        return {}


def _expected_type(schema: type, dotted_key: str) -> str:
    owner = _schema_at(schema, dotted_key)
    hint = _type_hints(owner).get(dotted_key.split(".")[-1])
    if hint is None:
        return ""
    name = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
    return f" (expected {name})"


def _validate_trainer(values: Any) -> dict[str, Any]:
    import lightning

    trainer = OmegaConf.to_container(values, resolve=True) if isinstance(values, DictConfig) else dict(values or {})
    accepted = set(inspect.signature(lightning.Trainer.__init__).parameters) - {"self"} - _RESERVED_TRAINER_KEYS
    for key in trainer:
        if key in _RESERVED_TRAINER_KEYS:
            raise ConfigError(f"trainer.{key}: set by the framework (see the callbacks/logger/run sections)")
        if key not in accepted:
            raise ConfigError(f"trainer.{key}: unknown key; accepted: lightning.Trainer arguments such as "
                              "max_steps, max_epochs, accelerator, devices, num_nodes, strategy, precision, "
                              "log_every_n_steps, val_check_interval, limit_val_batches, deterministic")
    _check_trainer_types(trainer)
    max_steps = trainer.get("max_steps", -1)
    ok = isinstance(max_steps, int) and not isinstance(max_steps, bool) and (max_steps > 0 or max_steps == -1)
    check_values("trainer", trainer, [("max_steps", ok, "a positive int (training batches) or -1")])
    return trainer


_SIMPLE_TYPES = {int: "int", float: "float", bool: "bool", str: "str", type(None): "null"}


def _check_trainer_types(trainer: dict[str, Any]) -> None:
    """Values against ``Trainer.__init__``'s annotations where those are plain scalars (int, float, bool, str, None,
    literals): ``max_epochs=abc`` fails here, with the key, instead of deep inside Lightning."""
    import lightning

    hints = _type_hints(lightning.Trainer.__init__)
    for key, value in trainer.items():
        hint = hints.get(key)
        if hint is None:
            continue
        options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        literals = [v for option in options if typing.get_origin(option) is typing.Literal
                    for v in typing.get_args(option)]
        plain = [option for option in options if option in _SIMPLE_TYPES]
        if len(plain) + sum(typing.get_origin(o) is typing.Literal for o in options) != len(options):
            continue  # objects, timedeltas, lists...: left to Lightning
        ok = value in literals or any(
            isinstance(value, option) and not (option is int and isinstance(value, bool)) for option in plain) or (
            float in plain and isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            accepted = [_SIMPLE_TYPES[o] for o in plain] + [repr(v) for v in literals]
            raise ConfigError(f"trainer.{key}: {value!r} is not valid; accepted: {' or '.join(accepted)}")


def validate(raw: DictConfig) -> DictConfig:
    """Check every section and return the resolved, fully typed experiment config."""
    unknown = [key for key in raw if key not in SECTIONS]
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section; accepted: {', '.join(SECTIONS)}")
    for section in ("model", "data"):
        if not isinstance(raw.get(section), (dict, DictConfig)) or "name" not in raw[section]:
            raise ConfigError(f"{section}.name: missing; the experiment must say which {section} to use")
    try:
        OmegaConf.resolve(raw)
    except OmegaConfBaseException as error:
        raise ConfigError(f"interpolation: {_one_line(error)}") from None
    model_cls = registry.get_model_class(raw.model.name)
    data_cls = registry.get_datamodule_class(raw.data.name)
    validated = {
        "model": merge_schema(model_cls.Config, raw.model, "model"),
        "data": merge_schema(data_cls.Config, raw.data, "data"),
        "trainer": _validate_trainer(raw.get("trainer")),
    }
    for section, schema in _FIXED_SECTIONS.items():
        validated[section] = merge_schema(schema, raw.get(section), section)
    config = OmegaConf.create(validated)
    mode = config.logger.wandb.mode
    check_values("logger.wandb", config.logger.wandb, [("mode", mode is None or mode in _WANDB_MODES,
                                                        ", ".join(_WANDB_MODES))])
    check_metrics_settings(config.callbacks.metrics)
    samples = config.callbacks.samples
    check_values("callbacks.samples", samples, [(key, samples[key] >= 1, "an int >= 1")
                                                 for key in ("every_n_steps", "n", "nrow")])
    # numpy's seeds: Lightning's seed_everything raises a bare ValueError outside them
    check_values("run", config.run, [("seed", 0 <= config.run.seed < 2**32, "an int in [0, 4294967295]"),
                                     ("progress", config.run.progress in PROGRESS_MODES, ", ".join(PROGRESS_MODES)),
                                     ("progress_every", config.run.progress_every >= 1, "an int >= 1")])
    model_cls.check_config(config.model)
    data_cls.check_config(config.data)
    if config.run.dir is None:
        config.run.dir = str(Path("runs") / config.run.name)
    return config


def check_metrics_settings(settings: DictConfig) -> None:
    from gan_lightning.metrics import EXTRACTORS, MetricsError, parse_metrics
    from gan_lightning.metrics.extractors import RESIZE_PROTOCOLS
    from gan_lightning.metrics.stats import MetricOptions, fewest_samples

    try:
        parse_metrics(settings.metrics)
    except MetricsError as error:
        raise ConfigError(f"callbacks.metrics.metrics: {error}") from None
    need, why = fewest_samples(settings.metrics, MetricOptions.from_settings(settings))
    check_values("callbacks.metrics", settings, [
        ("extractor", settings.extractor in EXTRACTORS, ", ".join(EXTRACTORS)),
        ("protocol", settings.protocol in RESIZE_PROTOCOLS, ", ".join(RESIZE_PROTOCOLS)),
        *((key, settings[key] >= 1, "an int >= 1")
          for key in ("every_n_steps", "batch_size", "precision_recall_k", "density_coverage_k", "cas_per_class",
                      "cas_epochs")),
        ("n_samples", settings.n_samples >= need, f"an int >= {need}{f' ({why})' if why else ''}")])


def parse_overrides(overrides: list[str]) -> DictConfig:
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value (omegaconf dotlist, e.g. model.lr_g=1e-4)")
    # W&B agents write Python's str of a value: None must mean null, not the string "None".
    overrides = [item[: -len("None")] + "null" if item.endswith("=None") else item for item in overrides]
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except OmegaConfBaseException as error:
        raise ConfigError(f"overrides: {_one_line(error)}") from None
    except UnicodeEncodeError:  # bytes that are not UTF-8 (a path from a broken file name)
        raise ConfigError(f"overrides: {' '.join(overrides)!a} holds bytes that are not valid UTF-8") from None
    except yaml.YAMLError as error:  # a value is parsed as YAML: `key=:` or `key=[1` is not a value
        bad = next((item for item in overrides if _yaml_error(item)), " ".join(overrides))
        problem = " ".join(str(getattr(error, "problem", None) or type(error).__name__).split())
        key, _, value = bad.partition("=")
        raise ConfigError(f"override {bad!r}: the value is not valid YAML ({problem}); to mean the string, quote it: "
                          f"{key}='\"{value}\"'") from None


def _yaml_error(item: str) -> bool:
    try:
        OmegaConf.from_dotlist([item])
    except yaml.YAMLError:
        return True
    except Exception:  # another problem: not the one being named
        return False
    return False


def load_experiment(experiment: str, overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """Load experiments/<name>.yaml (or a YAML path), apply dotlist overrides and validate."""
    path = resolve_experiment_path(experiment)
    try:
        raw = OmegaConf.load(path)
    except Exception as error:  # YAML syntax errors come from several libraries
        raise ConfigError(f"{path}: cannot parse YAML: {' '.join(str(error).split())}") from None
    if isinstance(raw, ListConfig):
        raise ConfigError(f"{path}: expected a mapping of sections ({', '.join(SECTIONS)})")
    merged = OmegaConf.merge(raw, parse_overrides(list(overrides)))
    return validate(merged)


def to_yaml(config: DictConfig) -> str:
    return OmegaConf.to_yaml(config, resolve=True)


# What may change when a run is resumed. Everything else (architecture, loss, optimiser, data shape and order, seed,
# precision) would either not apply (the optimiser state in the checkpoint wins) or make the checkpoint a different
# experiment, so a change there is refused.
_RESUME_MUTABLE_PREFIXES = ("trainer.", "callbacks.", "logger.")
_RESUME_MUTABLE_KEYS = {"run.name", "run.dir", "run.resume", "run.quiet", "run.progress", "run.progress_every",
                        "run.keep_freed_memory", "data.root",
                        "data.download", "model.max_nonfinite_batches", "model.grad_clip_d", "model.grad_clip_g",
                        "model.lr_decay_end", "model.channels_last", "model.compile"}
_RESUME_FROZEN_KEYS = {"trainer.precision"}
_PRECISION_ALIASES = {"32": "32-true", "16": "16-mixed", "bf16": "bf16-mixed", "64": "64-true"}


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists and empty mappings are leaves."""
    if isinstance(tree, DictConfig):
        tree = OmegaConf.to_container(tree, resolve=True)
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _normalised(key: str, value: Any) -> Any:
    if key == "trainer.precision":
        value = "32-true" if value is None else str(value)
        return _PRECISION_ALIASES.get(value, value)
    return value


def resume_changes(stored: dict[str, Any], config: DictConfig) -> dict[str, tuple[Any, Any]]:
    """The keys whose values differ between a checkpoint's experiment and the config resuming it, as
    {key: (old, new)}; raises ConfigError listing the changes that cannot be made mid-run."""
    old, new = flatten(stored), flatten(config)
    changes = {}
    for key in sorted(set(old) | set(new)):
        if (key not in old or key not in new) and not key.startswith("trainer."):
            continue  # a key one version of the framework has and the other lacks: nothing to compare
        # trainer is a free mapping: a key set on one side only is a change (precision: absent means 32-true)
        before, after = _normalised(key, old.get(key)), _normalised(key, new.get(key))
        if before != after:
            changes[key] = (before, after)
    refused = [key for key in changes if key in _RESUME_FROZEN_KEYS or not (
        key in _RESUME_MUTABLE_KEYS or key.startswith(_RESUME_MUTABLE_PREFIXES))]
    if refused:
        listed = ", ".join(f"{key} ({changes[key][0]!r} -> {changes[key][1]!r})" for key in refused[:6])
        raise ConfigError(f"run.resume: the checkpoint was trained with other values of keys that cannot change "
                          f"mid-run: {listed}{' ...' if len(refused) > 6 else ''}; start a new run.dir instead")
    return changes
