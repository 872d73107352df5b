"""Loggers for a run directory: metrics.csv directly in run.dir, optional TensorBoard and W&B."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from omegaconf import DictConfig, OmegaConf

from gan_lightning.errors import GanLightningError


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer deletes an existing metrics.csv; a resumed run must append to it instead."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as handle:
                self.metrics_keys = list(next(csv.reader(handle), []))


class RunCSVLogger(CSVLogger):
    """Writes ``<run_dir>/metrics.csv`` (no name/version subfolders) and appends on resume."""

    def __init__(self, run_dir: str | Path):
        super().__init__(save_dir=str(run_dir), name="", version="")

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            Path(self.log_dir).mkdir(parents=True, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def build_loggers(config: DictConfig, run_dir: Path) -> list[Any]:
    loggers: list[Any] = []
    if config.logger.csv:
        loggers.append(RunCSVLogger(run_dir))
    if config.logger.tensorboard:
        try:
            from lightning.pytorch.loggers import TensorBoardLogger

            loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version=""))
        except ModuleNotFoundError as error:
            raise GanLightningError(f"logger.tensorboard: needs the tensorboard package ({error})") from None
    wandb_config = config.logger.wandb
    if wandb_config.enabled:
        loggers.append(build_wandb_logger(config, run_dir))
    return loggers


def build_wandb_logger(config: DictConfig, run_dir: Path) -> Any:
    """Variants side by side: the group is the model (unless logger.wandb.group), the tags say the dataset,
    precision and process count, and the config is the resolved experiment under dotted keys (``model.lr_d``), the
    names sweep parameters have, so a sweep's parameters and the run's config are the same entries."""
    from lightning.pytorch.loggers import WandbLogger

    from gan_lightning.config import flatten

    wandb_config = config.logger.wandb
    trainer = config.trainer
    devices = trainer.get("devices", "auto")
    automatic = [f"data:{config.data.name}", f"precision:{trainer.get('precision', '32-true')}",
                 f"devices:{devices}" + (f"x{trainer.num_nodes}" if trainer.get("num_nodes", 1) != 1 else "")]
    options = {"mode": wandb_config.mode} if wandb_config.mode else {}  # null: wandb reads $WANDB_MODE
    return WandbLogger(
        project=wandb_config.project, entity=wandb_config.entity, name=config.run.name,
        group=wandb_config.group or config.model.name, job_type=wandb_config.job_type,
        tags=list(dict.fromkeys([*wandb_config.tags, *automatic])), save_dir=str(run_dir),
        config=flatten(OmegaConf.to_container(config, resolve=True)), log_model=wandb_config.log_model, **options)


def record_best(trainer: L.Trainer, key: str, value: float, higher_is_better: bool = False) -> None:
    """The best ``key`` so far (lowest, or highest for e.g. recall) and the batch it was reached at in each W&B run's
    summary (``<key>_best``, ``<key>_best_step``), so runs sort by it on a dashboard. Every scalar already has the
    batch count as its x-axis: Lightning's WandbLogger logs trainer/global_step with each row and makes it the step
    metric of "*"."""
    from lightning.pytorch.loggers import WandbLogger

    if not trainer.is_global_zero:  # only rank 0 has a W&B run
        return
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            summary = logger.experiment.summary
            best = summary.get(f"{key}_best")
            if best is None or (value > best if higher_is_better else value < best):
                summary[f"{key}_best"], summary[f"{key}_best_step"] = value, trainer.global_step


def logged_step(trainer: L.Trainer) -> int:
    """The step a logger files this batch's values under: the batches before it, as Lightning logs ``self.log``
    values, so scalars and images of one batch line up."""
    return max(trainer.global_step - 1, 0)


def publish_scalars(trainer: L.Trainer, numbers: dict[str, float]) -> None:
    """Send scalars computed in a callback to every logger and to ``trainer.callback_metrics``.

    ``pl_module.log`` from ``on_train_batch_end`` would re-emit the values with the next batch too; the
    step is the index Lightning gives a batch's logged scalars (batches before it). ``callback_metrics`` is where
    ``ModelCheckpoint(monitor=...)`` looks.
    """
    for logger in trainer.loggers:
        logger.log_metrics(numbers, step=logged_step(trainer))
    trainer.callback_metrics.update({k: torch.tensor(v) for k, v in numbers.items()})
