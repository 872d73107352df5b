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
        from lightning.pytorch.loggers import WandbLogger

        loggers.append(WandbLogger(
            project=wandb_config.project, entity=wandb_config.entity, name=config.run.name,
            group=wandb_config.group or config.model.name, tags=list(wandb_config.tags), save_dir=str(run_dir),
            mode=wandb_config.mode, config=OmegaConf.to_container(config, resolve=True),
        ))
    return loggers


def publish_scalars(trainer: L.Trainer, numbers: dict[str, float]) -> None:
    """Send scalars computed in a callback to every logger and to ``trainer.callback_metrics``.

    ``pl_module.log`` from ``on_train_batch_end`` would re-emit the values with the next batch too; the
    step is the index Lightning gives a batch's logged scalars (batches before it). ``callback_metrics`` is where
    ``ModelCheckpoint(monitor=...)`` looks.
    """
    for logger in trainer.loggers:
        logger.log_metrics(numbers, step=max(trainer.global_step - 1, 0))
    trainer.callback_metrics.update({k: torch.tensor(v) for k, v in numbers.items()})
