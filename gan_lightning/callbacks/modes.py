"""Mode-collapse metrics on the 2-D toy mixtures, every N training batches and at the end of training.

Scores ``n_samples`` points of the (EMA) generator from a fixed latent batch against the datamodule's
``mode_centres``/``mode_std`` with ``gan_lightning.metrics.modes.mode_stats`` and logs
``val/high_quality_pct``, ``val/modes_captured``, ``val/modes_captured_1pct`` and ``val/spread_ratio``. Each
evaluation also writes ``<run dir>/modes/step_NNNNNNN.json`` and a scatter plot ``step_NNNNNNN.png`` of the
samples over the mode centres.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import torch

from gan_lightning.callbacks.periodic import PeriodicCallback
from gan_lightning.loggers import publish_scalars
from gan_lightning.metrics.modes import mode_stats, scatter_plot


class ModeMetricsCallback(PeriodicCallback):
    def __init__(self, centres: torch.Tensor, std: float, directory: str | Path, every_n_steps: int = 500,
                 n_samples: int = 2500, seed: int = 0):
        super().__init__(every_n_steps)
        self.centres, self.std, self.directory = centres, std, Path(directory)
        self.n_samples, self.seed = n_samples, seed

    def run(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        step = trainer.global_step
        samples = torch.cat(list(pl_module.eval_samples(self.n_samples, self.n_samples, self.seed))).float().cpu()
        stats = mode_stats(samples, self.centres, self.std).as_dict()
        numbers = {f"val/{k}": float(v) for k, v in stats.items()}
        publish_scalars(trainer, numbers)
        if trainer.is_global_zero:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / f"step_{step:07d}.json").write_text(json.dumps({"step": step, **stats}, indent=1))
            title = (f"step {step}: {stats['modes_captured']}/{len(self.centres)} modes, "
                     f"{stats['high_quality_pct']:.1f}% high quality, spread {stats['spread_ratio']:.2f}")
            scatter_plot(samples, self.centres, self.directory / f"step_{step:07d}.png", title=title)
        return stats
