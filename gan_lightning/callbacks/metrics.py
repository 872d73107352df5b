"""FID / IS / KID every N training batches, logged as val/fid, val/is, val/kid (ModelCheckpoint can monitor them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
from omegaconf import DictConfig

from gan_lightning.callbacks.periodic import PeriodicCallback
from gan_lightning.evaluation import evaluate, make_extractor, real_stats_for
from gan_lightning.loggers import publish_scalars, record_best
from gan_lightning.metrics.stats import needs_extractor, needs_real_stats, parse_metrics, score_keys


class ImageMetrics(PeriodicCallback):
    """Scores the (EMA) generator; the extractor and the real statistics are built once, on first use.

    ``settings``: the experiment's ``callbacks.metrics`` section, or its keys as keywords
    (``ImageMetrics("runs/x", every_n_steps=1000, metrics="fid,kid", extractor="mnist")``); scores also go to
    ``run_dir``/metrics/step_N.json."""

    def __init__(self, run_dir: str | Path, settings: DictConfig | None = None, **options: Any):
        from gan_lightning.config import MetricsCallbackConfig, check_metrics_settings, merge_schema

        if settings is None or options:
            settings = merge_schema(MetricsCallbackConfig, {**(settings or {}), "enabled": True, **options},
                                    "callbacks.metrics")
            check_metrics_settings(settings)
        super().__init__(settings.every_n_steps)
        self.settings, self.run_dir = settings, Path(run_dir)
        self.extractor, self.real = None, None

    def run(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        step = trainer.global_step
        if self.extractor is None and needs_extractor(self.settings.metrics):
            self.extractor = make_extractor(self.settings, pl_module.device)
            if needs_real_stats(self.settings.metrics):  # every rank computes the scores (files written atomically)
                self.real = real_stats_for(trainer.datamodule, self.extractor, self.settings)
        scores = evaluate(pl_module, trainer.datamodule, self.settings, self.extractor, self.real)
        better = {**score_keys(), "classes_covered": "higher"}
        numbers = {f"val/{k}": float(v) for k, v in scores.items() if k in better}
        publish_scalars(trainer, numbers)
        for key in parse_metrics(self.settings.metrics):  # the best of each score in a W&B run's summary
            if f"val/{key}" in numbers:
                record_best(trainer, f"val/{key}", numbers[f"val/{key}"], higher_is_better=better[key] == "higher")
        if trainer.is_global_zero:
            out = self.run_dir / "metrics"
            out.mkdir(parents=True, exist_ok=True)
            (out / f"step_{step:07d}.json").write_text(json.dumps({"step": step, **scores}, indent=1))
        return scores
