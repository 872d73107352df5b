"""Mode-collapse metrics for the 2-D toy mixtures (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018).

A generated point is *high quality* when it lies within ``3 * std`` (Euclidean) of its nearest mode centre.
Each high-quality point is assigned to that nearest mode. Then:

- ``high_quality_pct``: 100 * (#high-quality points) / N.
- ``modes_captured``: modes holding at least one high-quality point (VEEGAN's count).
- ``modes_captured_1pct``: modes holding at least ``min_fraction`` (default 1%) of *all* N points, counting
  only high-quality points assigned to them. Stricter: a few stray points do not "capture" a mode. (PacGAN
  drops a mode with fewer than 20 of 2,500 samples, i.e. 0.8%; pass ``min_fraction=0.008`` for that rule.)
- ``spread_ratio``: how wide the captured modes are, against the data. The RMS distance of the high-quality
  points to their mode centre, over the same RMS for real samples of the mixture (an isotropic Gaussian cut
  at 3 std, computed in closed form). 1 = the data's width; < 1: G is sharper than the data (it trades
  within-mode diversity for high-quality samples, which the two counts above cannot see); > 1: wider.
  NaN when no point is high quality.

Pure torch + matplotlib; no Lightning.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from scipy.stats import chi2
from torch import Tensor

from gan_lightning.files import atomic_write


@dataclass(frozen=True)
class ModeStats:
    high_quality_pct: float
    modes_captured: int
    modes_captured_1pct: int
    spread_ratio: float = math.nan

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def real_high_quality_rms(std: float, dim: int) -> float:
    """RMS distance to its centre of a real point of N(centre, std^2 I) in ``dim`` dimensions, given that it
    lies within 3 std: (d/std)^2 is chi-square with ``dim`` degrees of freedom, and for X ~ chi2(k),
    E[X | X < c] = k * F_{k+2}(c) / F_k(c)."""
    cut = 9.0
    return std * math.sqrt(dim * chi2.cdf(cut, dim + 2) / chi2.cdf(cut, dim))


def mode_stats(samples: Tensor, centres: Tensor, std: float, min_fraction: float = 0.01) -> ModeStats:
    """Score ``samples`` (N, 2) against mode ``centres`` (K, 2) of a mixture with per-mode ``std``."""
    if samples.dim() != 2 or centres.dim() != 2 or samples.shape[1] != centres.shape[1]:
        raise ValueError(f"mode_stats: expected samples (N, D) and centres (K, D), "
                         f"got {tuple(samples.shape)} and {tuple(centres.shape)}")
    n = samples.shape[0]
    if n == 0:
        return ModeStats(0.0, 0, 0, math.nan)
    samples, centres = samples.detach().double().cpu(), centres.detach().double().cpu()
    dist, nearest = torch.cdist(samples, centres).min(dim=1)
    high_quality = dist <= 3 * std
    per_mode = torch.bincount(nearest[high_quality], minlength=len(centres))
    hq_rms = dist[high_quality].square().mean().sqrt().item() if high_quality.any() else math.nan
    return ModeStats(
        high_quality_pct=100.0 * high_quality.sum().item() / n,
        modes_captured=int((per_mode >= 1).sum()),
        modes_captured_1pct=int((per_mode / n >= min_fraction).sum()),
        spread_ratio=hq_rms / real_high_quality_rms(std, samples.shape[1]),
    )


def scatter_plot(samples: Tensor, centres: Tensor, path: str | Path, title: str | None = None) -> Path:
    """Write a PNG of ``samples`` (small dots) over the mode ``centres`` (crosses); returns the path."""
    # Figure + Agg canvas directly, not pyplot: no global backend switch, no figure registry to leak.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    samples, centres = samples.detach().float().cpu().numpy(), centres.detach().float().cpu().numpy()
    fig = Figure(figsize=(5, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.4, label="samples")
    ax.scatter(centres[:, 0], centres[:, 1], s=60, c="red", marker="x", label="modes")
    ax.set_aspect("equal")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)  # outside: it would hide corner modes
    if title:
        ax.set_title(title)
    path = Path(path)
    # Whole or not at all (a temporary file renamed over the target); matplotlib's format from the extension.
    atomic_write(path, lambda file: fig.savefig(file, format=path.suffix[1:].lower() or "png", dpi=100,
                                                bbox_inches="tight"))
    return path
