"""FID / IS / KID every N training batches, logged as val/fid, val/is, val/kid (ModelCheckpoint can monitor them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig

from gan_lightning.evaluation import evaluate, make_extractor, real_stats_for


class MetricsCallback(L.Callback):
    """Scores the (EMA) generator; the extractor and the real statistics are built once, on first use."""

    def __init__(self, settings: DictConfig, run_dir: str | Path):
        self.settings, self.run_dir = settings, Path(run_dir)
        self.extractor, self.real = None, None
        self.last_step = -1

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if trainer.global_step % self.settings.every_n_steps == 0 or trainer.global_step >= (trainer.max_steps or -1):
            self.score(trainer, pl_module)

    def score(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any] | None:
        step = trainer.global_step
        if step == self.last_step:
            return None
        self.last_step = step
        if self.extractor is None:
            self.extractor = make_extractor(self.settings, pl_module.device)
            if any(name in self.settings.metrics for name in ("fid", "kid")):
                self.real = real_stats_for(trainer.datamodule, self.extractor, self.settings)
        scores = evaluate(pl_module, trainer.datamodule, self.settings, self.extractor, self.real)
        numbers = {f"val/{k}": float(v) for k, v in scores.items()
                   if k in ("fid", "is", "is_std", "kid", "kid_std", "classes_covered")}
        # Straight to the loggers, at the step index Lightning gives this batch's train/* scalars:
        # pl_module.log from this hook would re-emit the same values on the next batch as well.
        for logger in trainer.loggers:
            logger.log_metrics(numbers, step=step - 1)
        # ...and where ModelCheckpoint(monitor="val/fid") looks for them.
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in numbers.items()})
        if trainer.is_global_zero:
            out = self.run_dir / "metrics"
            out.mkdir(parents=True, exist_ok=True)
            (out / f"step_{step:07d}.json").write_text(json.dumps({"step": step, **scores}, indent=1))
        return scores
