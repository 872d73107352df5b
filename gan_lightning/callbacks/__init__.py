"""Lightning callbacks: sample grids (and, from the metrics package, FID/IS/KID)."""

from gan_lightning.callbacks.samples import SampleGrid

__all__ = ["SampleGrid"]
