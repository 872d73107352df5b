"""Turn a validated experiment config into datamodule, model, loggers, callbacks and a Trainer, and run it.

``prepare`` builds everything that can fail short of training (also for ``--dry-run``) and writes nothing, in an
order that surfaces data problems before Lightning prints anything. ``train`` then takes the run directory's
lock, writes the config and trains; whatever happens, the directory is left describing its checkpoint.
"""

from __future__ import annotations

import logging
import sys
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
from gan_lightning.callbacks.progress import ProgressLines, progress_mode
from gan_lightning.callbacks.samples import SampleGrid
from gan_lightning.checkpoints import CheckpointWriteError, SafeCheckpointIO, load_checkpoint, saved_batch
from gan_lightning.config import resume_changes
from gan_lightning.errors import ConfigError, GanLightningError, Stopped
from gan_lightning.files import atomic_write_text, remove_stale_temporaries
from gan_lightning.launch import (
    check_sync_batchnorm,
    cluster_environments,
    is_launch_rank_zero,
    leave_process_group,
    resolve_strategy,
    skip_failing_nvml_check,
)
from gan_lightning.loggers import build_loggers
from gan_lightning.rundir import RunDirLock, check_writable, record_resume, record_summary_or_remove

_LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")


class Interrupted(Stopped):
    """Training stopped on a signal after saving; exit status 128 + the signal number (130 SIGINT, 143 SIGTERM)."""


def build_datamodule(config: DictConfig) -> L.LightningDataModule:
    return registry.get_datamodule_class(config.data.name)(config.data, seed=config.run.seed)


def build_model(config: DictConfig, datamodule: L.LightningDataModule) -> L.LightningModule:
    model_cls = registry.get_model_class(config.model.name)
    return model_cls.from_config(config.model, datamodule, experiment=OmegaConf.to_container(config, resolve=True))


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
        from gan_lightning.callbacks.metrics import ImageMetrics

        callbacks.append(ImageMetrics(run_dir, config.callbacks.metrics))
    if hasattr(datamodule, "mode_centres"):  # data with known modes (2-D toy mixtures): mode-collapse metrics
        from gan_lightning.callbacks.modes import ModeMetricsCallback

        callbacks.append(ModeMetricsCallback(datamodule.mode_centres, datamodule.mode_std, run_dir / "modes",
                                             config.data.eval_every_n_steps, config.data.eval_samples))
    samples = config.callbacks.samples
    if samples.enabled:
        callbacks.append(SampleGrid(run_dir / "samples", samples.every_n_steps, samples.n, samples.nrow))
    return callbacks


def silence_lightning() -> None:
    """No "GPU available" banners, tips or summaries: only Lightning's warnings."""
    for name in _LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def build_trainer(config: DictConfig, run_dir: Path, datamodule: L.LightningDataModule) -> L.Trainer:
    kwargs = resolve_strategy(dict(config.trainer))
    quiet = config.run.quiet
    if quiet:
        silence_lightning()
    progress = progress_mode(config.run.progress, quiet)
    callbacks = build_callbacks(config, run_dir, datamodule)
    if progress == "lines":
        callbacks.append(ProgressLines(config.run.progress_every))
    try:
        trainer = L.Trainer(logger=build_loggers(config, run_dir) or False, callbacks=callbacks,
                            plugins=[SafeCheckpointIO(), *cluster_environments()], default_root_dir=str(run_dir),
                            enable_progress_bar=progress == "bar", enable_model_summary=not quiet, **kwargs)
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
    if is_launch_rank_zero():
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
    # The model first: what it can make (sample shape, its discriminator's depth against the crop) is known from
    # the config, and refusing it must not wait for a download, a decoding of the folder or a cache write.
    model = build_model(config, datamodule)
    model.check_data(datamodule)
    if config.callbacks.metrics.enabled:  # e.g. ppl on a model without a mapping network: refused before training
        from gan_lightning.evaluation import check_metrics_apply

        check_metrics_apply(config.callbacks.metrics.metrics, model)
    if check_data:
        datamodule.check_batches()  # loads the data: a data problem shows before Lightning prints anything
    else:
        datamodule.check_download()  # what the real run's download would refuse, refused here too
    trainer = build_trainer(config, run_dir, datamodule)
    check_sync_batchnorm(config, trainer)
    if check_data:
        datamodule.check_batches(trainer.world_size)
    model.build_optimizers(trainer.max_steps, trainer.max_epochs)
    prepared = Prepared(config, run_dir, datamodule, model, trainer, ckpt_path, changes=changes)
    if checkpoint is not None:
        prepared.resume_step = int(checkpoint.get("global_step", 0))
        _check_resume(checkpoint, ckpt_path, prepared, check_data)
    return prepared


def train(config: DictConfig) -> Path:
    """Run an experiment; returns its run directory."""
    if config.run.keep_freed_memory:
        keep_freed_memory()
    skip_failing_nvml_check()
    prepared = prepare(config)
    run_dir, trainer = prepared.run_dir, prepared.trainer
    owner = is_launch_rank_zero()
    with RunDirLock(run_dir) if owner else nullcontext():
        if owner:
            if prepared.ckpt_path is None:
                resume_checkpoint(config, run_dir)  # a run that finished while this one was preparing
            remove_stale_temporaries(run_dir / "checkpoints")
            try:
                atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(config, resolve=True))
                if prepared.ckpt_path is not None:
                    record_resume(run_dir, prepared.resume_step, prepared.ckpt_path, prepared.changes,
                                  config.run.quiet)
            except OSError as error:  # a full disk or quota: nothing trained yet, the earlier records are intact
                raise GanLightningError(f"run.dir: cannot write the run records in {run_dir} "
                                        f"({error.strerror or type(error).__name__})") from None
        restore_handlers = interrupts.install()
        started = time.perf_counter()
        last = run_dir / "checkpoints" / "last.ckpt"
        try:
            try:
                trainer.fit(prepared.model, datamodule=prepared.datamodule,
                            ckpt_path=str(prepared.ckpt_path) if prepared.ckpt_path else None)
            finally:
                restore_handlers()
            signum = interrupts.requested()
            # The final state, whatever the checkpoint cadence: this is what --resume and `sample` pick up.
            trainer.save_checkpoint(last, False)  # False: the whole training state, not the weights alone
        except CheckpointWriteError as error:
            if owner:  # the summary names the batch of the checkpoint that exists (0: none)
                record_summary_or_remove(run_dir, saved_batch(last) or 0, time.perf_counter() - started,
                                         f"failed: {error}")
            raise
        if owner:
            failed = record_summary_or_remove(run_dir, trainer.global_step, time.perf_counter() - started, "finished"
                                              if signum is None else f"stopped ({interrupts.signal_name(signum)})")
            if failed:  # the checkpoint is saved: the run stands, without a summary
                print(f"warning: cannot write {run_dir / 'summary.json'} ({failed}); removed the old one",
                      file=sys.stderr)
        leave_process_group(trainer)
        if config.logger.wandb.enabled and trainer.is_global_zero:
            import wandb

            wandb.finish()  # close the run: a later run in this process (a sweep agent, tests) starts its own
    if signum is not None:
        raise Interrupted(f"{interrupts.signal_name(signum)} at batch {trainer.global_step}: saved {last}; continue "
                          f"with the same command and --resume (or run.resume={last})", signum)
    if trainer.interrupted:
        raise GanLightningError(f"training interrupted; {last} holds the last state")
    return run_dir
