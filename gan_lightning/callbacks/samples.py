"""Sample grids from a fixed latent batch, written to ``run.dir/samples`` and handed to every logger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor
from torchvision.utils import make_grid, save_image

from gan_lightning.callbacks.periodic import PeriodicCallback


def image_grid(samples: Tensor, nrow: int) -> Tensor:
    """[-1, 1] samples (N x C x H x W) -> one C x H' x W' grid in [0, 1]."""
    return make_grid(samples.detach().float().cpu(), nrow=nrow, normalize=True, value_range=(-1, 1), pad_value=1.0)


def log_image(loggers: list[Any], key: str, image: Tensor, step: int, path: Path) -> None:
    """Send a [0, 1] C x H x W image to every logger that shows images (the PNG file is the CSV record)."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)], step=step)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, image, global_step=step)


class SampleGridCallback(PeriodicCallback):
    """Every ``every_n_steps`` training batches (and at the end) render G on the model's fixed inputs.

    Models whose samples are not images (2-D toy data) provide ``render_samples(samples, path)``.
    """

    def __init__(self, directory: str | Path, every_n_steps: int = 200, n: int = 64, nrow: int = 8):
        super().__init__(every_n_steps)
        self.directory = Path(directory)
        self.n, self.nrow = n, nrow

    @rank_zero_only
    def run(self, trainer: L.Trainer, pl_module: L.LightningModule) -> Path:
        step = trainer.global_step
        self.directory.mkdir(parents=True, exist_ok=True)
        z, labels = pl_module.fixed_inputs(self.n, nrow=self.nrow)  # conditional: class by row
        samples = pl_module.generate(z, labels)
        path = self.directory / f"step_{step:07d}.png"
        if hasattr(pl_module, "render_samples"):
            pl_module.render_samples(samples, path)
            return path
        grid = image_grid(samples, self.nrow)
        save_image(grid, path)
        log_image(trainer.loggers, "samples", grid, step, path)
        return path


def check_output_path(path: str | Path) -> None:
    """One line, before any work, for an output the sample writer cannot produce: an unknown extension or a folder
    that cannot be created."""
    from PIL import Image

    from gan_lightning.errors import GanLightningError
    from gan_lightning.rundir import check_writable

    path = Path(path)
    image_suffixes = {suffix for suffix, name in Image.registered_extensions().items() if name in Image.SAVE}
    if path.suffix.lower() != ".pt" and path.suffix.lower() not in image_suffixes:
        raise GanLightningError(f"--out {path}: unknown extension {path.suffix or '(none)'!r}; accepted: .pt (raw "
                                "samples) or an image format such as .png or .jpg")
    check_writable(path.parent, "--out")


def save_samples(samples: Tensor, path: str | Path, nrow: int = 8) -> None:
    """Write samples to ``path``: a PNG grid, or the raw tensor (data space) for a ``.pt`` path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".pt":
        torch.save(samples.detach().cpu(), path)
    else:
        save_image(image_grid(samples, nrow), path)
