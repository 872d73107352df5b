"""Sample grids of the model's preview (for latent GANs: a fixed latent batch), written to ``run.dir/samples`` and
handed to every logger that shows images."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor
from torchvision.utils import make_grid

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


def check_output_path(path: str | Path, reads: Mapping[str | Path, str] | None = None) -> None:
    """One line, before any work, for an output the sample writer cannot or must not produce: a file the command
    reads (``reads``: path -> what it is), an existing directory, an unknown extension or a folder that cannot be
    created."""
    from gan_lightning.errors import GanLightningError
    from gan_lightning.outputs import check_output_file, image_format

    path = Path(path)
    check_output_file(path, "--out", reads or {})
    if path.suffix.lower() != ".pt" and image_format(path) is None:
        raise GanLightningError(f"--out {path}: unknown extension {path.suffix or '(none)'!r}; accepted: .pt (raw "
                                "samples) or an image format such as .png or .jpg")


# What one `sample` output may hold. A .pt is refused beyond PT_LIMIT_BYTES rather than streamed: torch.load reads
# a tensor file whole, so a bigger one is one that most machines cannot open (several --seed runs give more samples).
# A grid image is refused beyond what image viewers and PIL open: PIL's decompression-bomb limit of 89.5 megapixels
# (PIL.Image.MAX_IMAGE_PIXELS) and the 65,535-pixel side of JPEG and WebP. A scatter plot of 2-D points draws at most
# SCATTER_LIMIT points (more only cover the plot in ink).
PT_LIMIT_BYTES = 4 * 2**30
GRID_LIMIT_PIXELS = 89_478_485
GRID_LIMIT_SIDE = 65_535
SCATTER_LIMIT = 1_000_000


def check_sample_count(count: int, sample_shape: tuple[int, ...], path: str | Path, nrow: int) -> None:
    """One line, before any sample is drawn, if ``count`` samples of ``sample_shape`` make a ``path`` (a .pt, a
    scatter plot of 2-D points, or a grid of ``nrow`` images a row) beyond the limits above."""
    import math

    from gan_lightning.errors import GanLightningError

    if Path(path).suffix.lower() == ".pt":
        size = count * math.prod(sample_shape) * 4  # float32
        if size > PT_LIMIT_BYTES:
            raise GanLightningError(f"--n: {count} samples of shape {tuple(sample_shape)} make a {size / 2**30:.1f} "
                                    f"GiB tensor; a .pt output holds at most {PT_LIMIT_BYTES // 2**30} GiB (torch.load "
                                    "reads it whole): draw fewer per file, with different --seed values")
    elif len(sample_shape) == 1:
        if count > SCATTER_LIMIT:
            raise GanLightningError(f"--n: a scatter plot draws at most {SCATTER_LIMIT:,} points, got {count:,}; "
                                    "write a .pt for more")
    else:
        columns = min(nrow, count)
        rows = math.ceil(count / columns)
        width, height = (columns * (sample_shape[-1] + 2) + 2, rows * (sample_shape[-2] + 2) + 2)  # make_grid's
        if width * height > GRID_LIMIT_PIXELS or max(width, height) > GRID_LIMIT_SIDE:
            raise GanLightningError(f"--n: a grid of {count:,} samples, {columns} a row (--nrow), would be {width:,} x "
                                    f"{height:,} pixels; a grid image has at most {GRID_LIMIT_PIXELS:,} pixels and "
                                    f"{GRID_LIMIT_SIDE:,} a side: lower --n or write a .pt")


def save_samples(samples: Tensor, path: str | Path, nrow: int = 8, centres: Tensor | None = None) -> Tensor | None:
    """Write samples to ``path`` (whole or not at all, through a temporary file): the raw tensor (data space) for a
    ``.pt`` path, a scatter plot for 2-D points (over ``centres``), else a PNG grid; returns the grid image when one
    was made."""
    from gan_lightning.files import atomic_torch_save
    from gan_lightning.outputs import save_image_file

    path = Path(path)
    if path.suffix.lower() == ".pt":
        atomic_torch_save(samples.detach().cpu(), path)
        return None
    if samples.dim() == 2:
        from gan_lightning.metrics.modes import scatter_plot

        scatter_plot(samples, torch.zeros(0, 2) if centres is None else centres, path)
        return None
    grid = image_grid(samples, nrow)
    save_image_file(grid, path)
    return grid
