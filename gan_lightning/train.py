"""Turn a validated experiment config into datamodule, model, loggers, callbacks and a Trainer, and run it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from gan_lightning import registry
from gan_lightning.callbacks.samples import SampleGridCallback
from gan_lightning.errors import ConfigError, GanLightningError
from gan_lightning.loggers import build_loggers


def build_datamodule(config: DictConfig) -> L.LightningDataModule:
    return registry.get_datamodule_class(config.data.name)(config.data, seed=config.run.seed)


def build_model(config: DictConfig, datamodule: L.LightningDataModule) -> L.LightningModule:
    model_cls = registry.get_model_class(config.model.name)
    return model_cls(config.model, datamodule.sample_shape, datamodule.num_classes,
                     experiment=OmegaConf.to_container(config, resolve=True))


def build_callbacks(config: DictConfig, run_dir: Path, datamodule: L.LightningDataModule) -> list[L.Callback]:
    ckpt = config.callbacks.checkpoint
    callbacks: list[L.Callback] = [ModelCheckpoint(
        dirpath=run_dir / "checkpoints", filename="step{step:07d}", auto_insert_metric_name=False,
        save_last=True, every_n_train_steps=ckpt.every_n_steps, monitor=ckpt.monitor, mode=ckpt.mode,
        save_top_k=ckpt.save_top_k if ckpt.monitor else 0,
    )]
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


def _strategy(trainer_kwargs: dict[str, Any]) -> dict[str, Any]:
    # Alternating updates leave one network without gradients in each backward: DDP must know.
    if trainer_kwargs.get("strategy") in ("ddp", "ddp_spawn", "ddp_find_unused_parameters_true"):
        from lightning.pytorch.strategies import DDPStrategy

        start = "spawn" if trainer_kwargs["strategy"] == "ddp_spawn" else "popen"
        trainer_kwargs = {**trainer_kwargs, "strategy": DDPStrategy(find_unused_parameters=True, start_method=start)}
    return trainer_kwargs


def build_trainer(config: DictConfig, run_dir: Path, datamodule: L.LightningDataModule) -> L.Trainer:
    kwargs = _strategy(dict(config.trainer))
    quiet = config.run.quiet
    if quiet:
        for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return L.Trainer(logger=build_loggers(config, run_dir) or False,
                         callbacks=build_callbacks(config, run_dir, datamodule),
                         default_root_dir=str(run_dir), enable_progress_bar=not quiet, enable_model_summary=not quiet,
                         **kwargs)
    except (ValueError, TypeError, MisconfigurationException) as error:
        raise ConfigError(f"trainer: {' '.join(str(error).split())}") from None


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


def train(config: DictConfig) -> Path:
    """Run an experiment; returns its run directory."""
    run_dir = Path(config.run.dir)
    ckpt_path = resume_checkpoint(config, run_dir)
    L.seed_everything(config.run.seed, workers=True, verbose=False)
    datamodule = build_datamodule(config)
    model = build_model(config, datamodule)
    trainer = build_trainer(config, run_dir, datamodule)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(config, resolve=True))
    trainer.fit(model, datamodule=datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None)
    # The final state, whatever the checkpoint cadence: this is what --resume and `sample` pick up.
    trainer.save_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    if config.logger.wandb.enabled and trainer.is_global_zero:
        import wandb

        wandb.finish()  # close the run: a later run in this process (a sweep agent, tests) starts its own
    if trainer.interrupted:
        raise GanLightningError(f"training interrupted; {run_dir}/checkpoints/last.ckpt holds the last state")
    return run_dir


def load_model(path: str | Path) -> L.LightningModule:
    """Rebuild a model from a checkpoint written by ``train`` (its class comes from the registry)."""
    path = Path(path)
    if not path.is_file():
        raise GanLightningError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        hparams = checkpoint["hyper_parameters"]
        model_cls = registry.get_model_class(hparams["config"]["name"])
    except Exception as error:  # unpickling garbage raises many kinds of errors; all mean the same here
        raise GanLightningError(f"{path} is not a gan-lightning checkpoint ({type(error).__name__})") from None
    model = model_cls(hparams["config"], hparams["sample_shape"], hparams["num_classes"], hparams.get("experiment"))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()
