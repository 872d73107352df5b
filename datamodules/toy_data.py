"""2-D Gaussian mixtures of the mode-collapse benchmarks (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et
al. 2018). Pure torch sampling functions: the LightningDataModule wraps these, and
``gan_lightning.metrics.modes`` scores generated points against the same centres and std.

Values are PacGAN's: "ring" = 8 Gaussians evenly spaced on the unit circle, std 0.01; "grid" = 25
Gaussians at {-4, -2, 0, 2, 4}^2, std 0.05.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor


def ring_modes(n_modes: int = 8, radius: float = 1.0) -> Tensor:
    """(n_modes, 2) centres (radius cos(2 pi k / n), radius sin(2 pi k / n)), k = 0 .. n_modes - 1."""
    angles = torch.arange(n_modes, dtype=torch.float64) * (2 * math.pi / n_modes)
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def grid_modes(n_per_side: int = 5, spacing: float = 2.0) -> Tensor:
    """(n_per_side^2, 2) centres of a square grid centred on 0; defaults give {-4, -2, 0, 2, 4}^2, row-major."""
    axis = (torch.arange(n_per_side, dtype=torch.float32) - (n_per_side - 1) / 2) * spacing
    xs, ys = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=1)


def sample_mixture(centres: Tensor, std: float, n: int,
                   generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """n points from the equal-weight isotropic mixture: returns (points (n, 2), mode_index (n,) long)."""
    mode_index = torch.randint(len(centres), (n,), generator=generator)
    noise = torch.randn(n, centres.shape[1], generator=generator, dtype=centres.dtype)
    return centres[mode_index] + std * noise, mode_index


# name -> (centres factory, per-mode std); configs name a mixture by key (``data.mixture: ring``).
TOY_MIXTURES: dict[str, tuple[Callable[[], Tensor], float]] = {
    "ring": (ring_modes, 0.01),
    "grid": (grid_modes, 0.05),
}
