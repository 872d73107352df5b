"""Sample grids of the model's preview (for latent GANs: a fixed latent batch), written to ``run.dir/samples`` and
handed to every logger that shows images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor
from torchvision.utils import make_grid, save_image

from gan_lightning.callbacks.periodic import PeriodicCallback
from gan_lightning.loggers import logged_step


def image_grid(samples: Tensor, nrow: int) -> Tensor:
    """[-1, 1] samples (N x C x H x W) -> one C x H' x W' grid in [0, 1]."""
    return make_grid(samples.detach().float().cpu(), nrow=nrow, normalize=True, value_range=(-1, 1), pad_value=1.0)


def log_image(loggers: list[Any], key: str, image: Tensor | None, step: int, path: Path) -> None:
    """Send the PNG at ``path`` (W&B) and its [0, 1] C x H x W ``image`` (TensorBoard; None for a plot that only
    exists as a file) to every logger that shows images (the PNG file is the CSV record)."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)], step=step)
        elif isinstance(logger, TensorBoardLogger) and image is not None:
            logger.experiment.add_image(key, image, global_step=step)


class SampleGrid(PeriodicCallback):
    """Every ``every_n_steps`` training batches (and at the end) render the model's ``preview``: an image grid, or
    for 2-D points a scatter plot over the datamodule's mode centres."""

    def __init__(self, directory: str | Path, every_n_steps: int = 200, n: int = 64, nrow: int = 8):
        super().__init__(every_n_steps)
        self.directory = Path(directory)
        self.n, self.nrow = n, nrow

    @rank_zero_only
    def run(self, trainer: L.Trainer, pl_module: L.LightningModule) -> Path:
        step = trainer.global_step
        self.directory.mkdir(parents=True, exist_ok=True)
        preview = pl_module.preview(self.n, self.nrow, trainer.datamodule)
        path = self.directory / f"step_{step:07d}.png"
        grid = save_samples(preview.images, path, preview.nrow, mode_centres(trainer.datamodule))
        log_image(trainer.loggers, "samples", grid, logged_step(trainer), path)
        return path


def mode_centres(datamodule: Any) -> Tensor:
    """The centres a scatter plot of 2-D samples marks (none for data without known modes)."""
    return getattr(datamodule, "mode_centres", torch.zeros(0, 2))


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


def save_samples(samples: Tensor, path: str | Path, nrow: int = 8, centres: Tensor | None = None) -> Tensor | None:
    """Write samples to ``path``: the raw tensor (data space) for a ``.pt`` path, a scatter plot for 2-D points
    (over ``centres``), else a PNG grid; returns the grid image when one was made."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".pt":
        torch.save(samples.detach().cpu(), path)
        return None
    if samples.dim() == 2:
        from gan_lightning.metrics.modes import scatter_plot

        scatter_plot(samples, torch.zeros(0, 2) if centres is None else centres, path)
        return None
    grid = image_grid(samples, nrow)
    save_image(grid, path)
    return grid
