"""Turn a validated experiment config into datamodule, model, loggers, callbacks and a Trainer, and run it.

``prepare`` builds everything that can fail short of training (also for ``--dry-run``) and writes nothing, in an
order that surfaces data problems before Lightning prints anything. ``train`` then takes the run directory's
lock, writes the config and trains; whatever happens, the directory is left describing its checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from gan_lightning import interrupts, registry
from gan_lightning.allocator import keep_freed_memory
from gan_lightning.callbacks.samples import SampleGridCallback
from gan_lightning.checkpoints import NonFiniteStateError, SafeCheckpointIO, load_checkpoint, non_finite_entries
from gan_lightning.config import resume_changes
from gan_lightning.errors import ConfigError, GanLightningError
from gan_lightning.files import atomic_write, remove_stale_temporaries
from gan_lightning.loggers import build_loggers
from gan_lightning.rundir import RunDirLock, check_writable

_LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")


class Interrupted(GanLightningError):
    """Training stopped on a signal after saving; exit status 128 + the signal number (130 SIGINT, 143 SIGTERM)."""

    prefix = "stopped"

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


def build_datamodule(config: DictConfig) -> L.LightningDataModule:
    return registry.get_datamodule_class(config.data.name)(config.data, seed=config.run.seed)


def build_model(config: DictConfig, datamodule: L.LightningDataModule) -> L.LightningModule:
    model_cls = registry.get_model_class(config.model.name)
    return model_cls(config.model, datamodule.sample_shape, datamodule.num_classes,
                     experiment=OmegaConf.to_container(config, resolve=True),
                     label_names=datamodule.label_names, multi_label=datamodule.multi_label)


def build_callbacks(config: DictConfig, run_dir: Path, datamodule: L.LightningDataModule) -> list[L.Callback]:
    ckpt = config.callbacks.checkpoint
    # GracefulStop first: once a stop signal is in, the callbacks after it skip their periodic work.
    # last.ckpt has its own ModelCheckpoint without a monitor: one with a monitor defers every save, last.ckpt
    # included, until the monitored metric exists.
    callbacks: list[L.Callback] = [interrupts.GracefulStop(), ModelCheckpoint(
        dirpath=run_dir / "checkpoints", save_last=True, save_top_k=0, every_n_train_steps=ckpt.every_n_steps)]
    if ckpt.monitor and config.callbacks.metrics.enabled:
        # Checked right after each evaluation (Lightning runs checkpoint callbacks after the metrics callback).
        callbacks.append(ModelCheckpoint(
            dirpath=run_dir / "checkpoints", filename="step{step:07d}", auto_insert_metric_name=False,
            every_n_train_steps=config.callbacks.metrics.every_n_steps, monitor=ckpt.monitor, mode=ckpt.mode,
            save_top_k=ckpt.save_top_k))
    if config.callbacks.metrics.enabled:
        from gan_lightning.callbacks.metrics import MetricsCallback

        callbacks.append(MetricsCallback(config.callbacks.metrics, run_dir))
    if hasattr(datamodule, "mode_centres"):  # data with known modes (2-D toy mixtures): mode-collapse metrics
        from gan_lightning.callbacks.modes import ModeMetricsCallback

        callbacks.append(ModeMetricsCallback(datamodule.mode_centres, datamodule.mode_std, run_dir / "modes",
                                             config.data.eval_every_n_steps, config.data.eval_samples))
    samples = config.callbacks.samples
    if samples.enabled:
        callbacks.append(SampleGridCallback(run_dir / "samples", samples.every_n_steps, samples.n, samples.nrow))
    return callbacks


_DDP_START_METHODS = {"ddp": "popen", "ddp_find_unused_parameters_true": "popen", "ddp_find_unused_parameters_false":
                      "popen", "ddp_spawn": "spawn", "ddp_fork": "fork", "ddp_notebook": "fork"}


def _several_processes(trainer_kwargs: dict[str, Any]) -> bool:
    """Whether Lightning's "auto" strategy would pick DDP: more than one device or node."""
    devices, nodes = trainer_kwargs.get("devices", "auto"), trainer_kwargs.get("num_nodes", 1)
    if nodes > 1:
        return True
    if devices == "auto":  # every visible GPU, unless the accelerator says CPU
        import torch

        return trainer_kwargs.get("accelerator", "auto") in ("auto", "gpu", "cuda") and torch.cuda.device_count() > 1
    if isinstance(devices, str) and devices not in ("auto", "1"):
        return devices == "-1" or "," in devices.strip(",") or (devices.isdigit() and int(devices) > 1)
    if isinstance(devices, list):
        return len(devices) > 1
    return isinstance(devices, int) and (devices > 1 or devices == -1)


def _external_launcher() -> tuple[str, int] | None:
    """("torchrun" or "srun", processes it started) when one of them started this process, else None."""
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    if TorchElasticEnvironment.detect():  # first, as in Lightning: torchrun can run inside a SLURM job
        return "torchrun", int(os.environ.get("WORLD_SIZE", "1"))
    if SLURMEnvironment.detect():
        return "srun", int(os.environ.get("SLURM_NTASKS", "1"))
    return None


def _strategy(trainer_kwargs: dict[str, Any]) -> dict[str, Any]:
    # Alternating updates leave one network without gradients in each backward: DDP must know, whether the
    # strategy is named or Lightning would choose DDP itself for several devices or nodes. Processes started by
    # torchrun or srun get DDP too: with "auto" and trainer.devices=1 Lightning would let each train on its own
    # (all writing one run directory); under DDP a devices/num_nodes mismatch is refused (build_trainer).
    strategy = trainer_kwargs.get("strategy", "auto")
    launcher = _external_launcher()
    if strategy == "auto" and (_several_processes(trainer_kwargs) or (launcher is not None and launcher[1] > 1)):
        strategy = "ddp"
    if strategy in _DDP_START_METHODS:
        from lightning.pytorch.strategies import DDPStrategy

        trainer_kwargs = {**trainer_kwargs, "strategy": DDPStrategy(find_unused_parameters=True,
                                                                    start_method=_DDP_START_METHODS[strategy])}
    elif isinstance(strategy, str) and strategy.startswith(("fsdp", "deepspeed")):
        raise ConfigError(f"trainer.strategy: {strategy} is not supported for GANs here (alternating updates of "
                          "sharded networks); accepted: auto, ddp, ddp_spawn, ddp_fork, ddp_notebook")
    return trainer_kwargs


def silence_lightning() -> None:
    """No "GPU available" banners, tips or summaries: only Lightning's warnings."""
    for name in _LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _cluster_environment() -> list[Any]:
    """Under srun, Lightning's SLURM environment without its auto-requeue: SIGUSR1 belongs to interrupts.py (save
    last.ckpt, exit 138) and the batch script requeues (scripts/slurm_train.sbatch). Lightning's own handler would
    save an hpc_ckpt_N.ckpt, which it loads by itself on the next start, past the resume checks, and requeue from
    inside the job."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    launcher = _external_launcher()
    if launcher is None or launcher[0] != "srun":
        return []
    try:
        return [SLURMEnvironment(auto_requeue=False)]
    except RuntimeError as error:  # e.g. --ntasks without --ntasks-per-node
        raise ConfigError(f"SLURM: {' '.join(str(error).split())}") from None


def build_trainer(config: DictConfig, run_dir: Path, datamodule: L.LightningDataModule) -> L.Trainer:
    kwargs = _strategy(dict(config.trainer))
    quiet = config.run.quiet
    if quiet:
        silence_lightning()
    try:
        trainer = L.Trainer(logger=build_loggers(config, run_dir) or False,
                            callbacks=build_callbacks(config, run_dir, datamodule),
                            plugins=[SafeCheckpointIO(), *_cluster_environment()], default_root_dir=str(run_dir),
                            enable_progress_bar=not quiet, enable_model_summary=not quiet, **kwargs)
        # Lightning checks trainer.devices/num_nodes against torchrun's or srun's process counts only when fit
        # launches (a traceback after the run directory is written); check now, so --dry-run catches it.
        environment = getattr(trainer.strategy, "cluster_environment", None)
        if environment is not None and environment.creates_processes_externally:
            environment.validate_settings(num_devices=trainer.num_devices, num_nodes=trainer.num_nodes)
        return trainer
    except (ValueError, TypeError, AssertionError, MisconfigurationException) as error:
        raise ConfigError(f"trainer: {' '.join(str(error).split()) or type(error).__name__}") from None


def resume_checkpoint(config: DictConfig, run_dir: Path) -> Path | None:
    """The checkpoint to resume from, or None; refuse to start a fresh run over an existing one."""
    last = run_dir / "checkpoints" / "last.ckpt"
    if config.run.resume is None:
        if last.exists():
            raise ConfigError(f"run.dir: {run_dir} already holds a run ({last}); continue it with "
                              "run.resume=last (or --resume) or choose another run.dir")
        return None
    path = last if config.run.resume == "last" else Path(config.run.resume)
    if not path.is_file():
        raise ConfigError(f"run.resume: checkpoint {path} does not exist")
    return path


@dataclass
class Prepared:
    """Everything a run needs, built and checked; nothing written yet."""

    config: DictConfig
    run_dir: Path
    datamodule: L.LightningDataModule
    model: L.LightningModule
    trainer: L.Trainer
    ckpt_path: Path | None = None
    resume_step: int = 0
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)


def _check_resume(checkpoint: dict[str, Any], path: Path, prepared: Prepared, check_data: bool) -> None:
    """The checkpoint must continue this experiment: same data, and batches left to train."""
    stored = checkpoint.get(type(prepared.datamodule).__qualname__, {}).get("fingerprint")
    if check_data and stored is not None and not prepared.datamodule.matches_fingerprint(stored):
        raise ConfigError(f"data: the data now configured (data.root={prepared.config.data.get('root', '-')}) is not "
                          f"the data {path} was trained on; resume with that data, or start a new run.dir")
    max_steps = prepared.trainer.max_steps
    if max_steps != -1 and prepared.resume_step >= max_steps:
        raise ConfigError(f"run.resume: {path} is at batch {prepared.resume_step}, trainer.max_steps={max_steps} is "
                          f"already reached; raise trainer.max_steps (e.g. trainer.max_steps={2 * max_steps}) to "
                          "train on")


def prepare(config: DictConfig, dry_run: bool = False) -> Prepared:
    """Build and check the datamodule (data loaded, batch arithmetic), model, optimizers and schedulers, callbacks,
    loggers and trainer, and the checkpoint to resume from; raise a one-line error for anything that would fail.
    A dry run downloads nothing: data still to be fetched is checked when the real run has it."""
    run_dir = Path(config.run.dir)
    check_writable(run_dir, "run.dir")
    metrics = config.callbacks.metrics
    if metrics.enabled:
        from gan_lightning.metrics.stats import default_cache_dir

        check_writable(Path(metrics.cache_dir).expanduser() if metrics.cache_dir else default_cache_dir(),
                       "callbacks.metrics.cache_dir")
    if _is_launch_rank_zero():
        RunDirLock(run_dir).check()  # a live run in this directory: say so before anything else about it
    ckpt_path = resume_checkpoint(config, run_dir)
    checkpoint, changes = None, {}
    if ckpt_path is not None:
        checkpoint = load_checkpoint(ckpt_path, "run.resume")
        stored = checkpoint["hyper_parameters"].get("experiment")
        if stored:
            changes = resume_changes(stored, config)
    L.seed_everything(config.run.seed, workers=True, verbose=False)
    datamodule = build_datamodule(config)
    check_data = not (dry_run and datamodule.needs_download())
    if check_data:
        datamodule.check_batches()  # loads the data: a data problem shows before Lightning prints anything
    model = build_model(config, datamodule)
    if model.config.pack > 1 and config.data.batch_size % model.config.pack:
        raise ConfigError(f"model.pack: {model.config.pack} does not divide data.batch_size={config.data.batch_size}")
    trainer = build_trainer(config, run_dir, datamodule)
    _check_sync_batchnorm(config, trainer)
    if check_data:
        datamodule.check_batches(trainer.world_size)
    model.build_optimizers(trainer.max_steps, trainer.max_epochs)
    prepared = Prepared(config, run_dir, datamodule, model, trainer, ckpt_path, changes=changes)
    if checkpoint is not None:
        prepared.resume_step = int(checkpoint.get("global_step", 0))
        _check_resume(checkpoint, ckpt_path, prepared, check_data)
    return prepared


def _check_sync_batchnorm(config: DictConfig, trainer: L.Trainer) -> None:
    """SyncBatchNorm all-reduces batch statistics on GPU-like devices only; torch raises at the first forward on CPU
    ranks, once per rank. Say it once, before anything starts."""
    device = trainer.strategy.root_device.type
    if config.trainer.get("sync_batchnorm") and trainer.world_size > 1 and device not in ("cuda", "xpu", "hpu"):
        raise ConfigError(f"trainer.sync_batchnorm: SyncBatchNorm needs GPU (cuda/xpu/hpu) ranks, these are {device}; "
                          "set trainer.sync_batchnorm=false or train on GPUs")


def _is_launch_rank_zero() -> bool:
    """True in the process that owns the run directory: not a DDP worker started by Lightning, torchrun or srun."""
    return all(int(os.environ.get(name, "0") or 0) == 0 for name in ("RANK", "LOCAL_RANK", "NODE_RANK",
                                                                         "GROUP_RANK", "SLURM_PROCID"))


def _write_text_atomically(path: Path, text: str) -> None:
    atomic_write(path, lambda file: file.write(text.encode()))


def _record_resume(prepared: Prepared) -> None:
    """Append the resume and its config changes to run.dir/resumes.yaml and say it on stdout."""
    changes = {key: {"from": old, "to": new} for key, (old, new) in prepared.changes.items()
               if key not in ("run.resume", "run.quiet")}
    history = prepared.run_dir / "resumes.yaml"
    entries = list(OmegaConf.load(history)) if history.is_file() else []
    entries.append({"batch": prepared.resume_step, "checkpoint": str(prepared.ckpt_path), "changes": changes})
    _write_text_atomically(history, OmegaConf.to_yaml(entries))
    if not prepared.config.run.quiet:
        listed = ", ".join(f"{k} {v['from']} -> {v['to']}" for k, v in changes.items()) or "no config changes"
        print(f"resuming {prepared.run_dir} at batch {prepared.resume_step} ({listed})")


def _leave_process_group(trainer: L.Trainer) -> None:
    """Under DDP, all ranks leave together and close their connections before the interpreter exits: a rank whose
    peers have already exited can otherwise abort (SIGABRT) in the backend's threads at shutdown."""
    import torch.distributed as dist

    if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
        trainer.strategy.barrier("end of training")
        dist.destroy_process_group()


def _record_summary(run_dir: Path, batches: int, seconds: float, status: str) -> None:
    """run.dir/summary.json: batches trained, wall seconds of training summed over resumes, how it ended (read by
    ``gan-lightning compare``)."""
    path = run_dir / "summary.json"
    try:
        before = float(json.loads(path.read_text())["seconds"]) if path.is_file() else 0.0
    except (ValueError, KeyError, TypeError):
        before = 0.0
    summary = {"batches": batches, "seconds": round(before + seconds, 3), "status": status}
    _write_text_atomically(path, json.dumps(summary, indent=1) + "\n")


def train(config: DictConfig) -> Path:
    """Run an experiment; returns its run directory."""
    if config.run.keep_freed_memory:
        keep_freed_memory()
    prepared = prepare(config)
    run_dir, trainer = prepared.run_dir, prepared.trainer
    owner = _is_launch_rank_zero()
    with RunDirLock(run_dir) if owner else nullcontext():
        if owner:
            if prepared.ckpt_path is None:
                resume_checkpoint(config, run_dir)  # a run that finished while this one was preparing
            remove_stale_temporaries(run_dir / "checkpoints")
            _write_text_atomically(run_dir / "config.yaml", OmegaConf.to_yaml(config, resolve=True))
            if prepared.ckpt_path is not None:
                _record_resume(prepared)
        restore_handlers = interrupts.install()
        started = time.perf_counter()
        try:
            trainer.fit(prepared.model, datamodule=prepared.datamodule,
                        ckpt_path=str(prepared.ckpt_path) if prepared.ckpt_path else None)
        finally:
            restore_handlers()
        signum = interrupts.requested()
        last = run_dir / "checkpoints" / "last.ckpt"
        # The final state, whatever the checkpoint cadence: this is what --resume and `sample` pick up.
        trainer.save_checkpoint(last, False)  # False: the whole training state, not the weights alone
        if owner:
            _record_summary(run_dir, trainer.global_step, time.perf_counter() - started,
                            "finished" if signum is None else f"stopped ({interrupts.signal_name(signum)})")
        _leave_process_group(trainer)
        if config.logger.wandb.enabled and trainer.is_global_zero:
            import wandb

            wandb.finish()  # close the run: a later run in this process (a sweep agent, tests) starts its own
    if signum is not None:
        raise Interrupted(f"{interrupts.signal_name(signum)} at batch {trainer.global_step}: saved {last}; continue "
                          f"with the same command and --resume (or run.resume={last})", signum)
    if trainer.interrupted:
        raise GanLightningError(f"training interrupted; {last} holds the last state")
    return run_dir


def load_model(path: str | Path) -> L.LightningModule:
    """Rebuild a model from a checkpoint written by ``train`` (its class comes from the registry); only tensors and
    plain data are unpickled."""
    checkpoint = load_checkpoint(path)
    hparams = checkpoint["hyper_parameters"]
    config = hparams["config"]
    model_cls = registry.get_model_class(config.get("name") if isinstance(config, dict) else None)
    try:
        model = model_cls(config, hparams["sample_shape"], hparams["num_classes"], hparams.get("experiment"),
                          label_names=hparams.get("label_names"), multi_label=hparams.get("multi_label", False))
        model.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        first = " ".join(str(error).split())[:200]
        raise GanLightningError(f"{path}: its weights do not fit model {model_cls.registry_name!r} as configured in "
                                f"the checkpoint ({first})") from None
    bad = non_finite_entries(checkpoint["state_dict"])
    if bad:
        raise NonFiniteStateError(f"{path}: the model holds non-finite values ({', '.join(bad[:3])}); the run "
                                  "diverged before this checkpoint: use an earlier one")
    return model.eval()

