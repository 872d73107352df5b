"""k-NN manifold metrics: improved precision/recall (Kynkaanniemi et al. 2019) and density/coverage (Naeem et al.
2020). Pure torch, float64, no Lightning and no networks.

Each set of feature vectors stands for a manifold: the union of balls around its points, each ball's radius the
distance to the point's k-th nearest neighbour in its own set (the point itself not counted).
  precision = share of fakes inside the real manifold;   recall = share of reals inside the fake manifold;
  density   = (1 / (k M)) sum_j #{real balls holding fake j}  (can exceed 1);
  coverage  = share of reals whose ball holds at least one fake.
Balls are open (distance < radius), as in the reference ``prdc`` code: with it a perfect copy of the real set has
density exactly 1 (each real ball holds its centre and its k - 1 nearer neighbours). Kynkaanniemi's code uses <=;
the two differ only on exact distance ties, which continuous features do not have.

Distances are computed in chunks of rows, so memory stays O(chunk x N) rather than O(N x M) at 50k x 50k.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan_lightning.metrics.errors import MetricsError
from gan_lightning.metrics.math import ArrayLike, _f64, _features_2d

CHUNK = 2048  # rows per block of the distance matrix: 2048 x 10,000 float64 distances is 160 MB


def _distances(a: Tensor, b: Tensor) -> Tensor:
    # The |a|^2 + |b|^2 - 2ab form (a matmul): in float64 its cancellation error is far below any ball radius.
    return torch.cdist(a, b, compute_mode="use_mm_for_euclid_dist")


def knn_radii(features: ArrayLike, k: int) -> Tensor:
    """Distance of every row to its k-th nearest other row (float64, shape (N,)): the radii of its manifold."""
    x = _features_2d(features, "features")
    if not 1 <= k < x.shape[0]:
        raise MetricsError(f"k-NN radii need 1 <= k < number of samples, got k={k} for {x.shape[0]} samples")
    # k + 1 smallest distances of each row include the row itself (distance 0): the largest of them is the k-th.
    return torch.cat([_distances(block, x).topk(k + 1, dim=1, largest=False).values[:, -1]
                      for block in x.split(CHUNK)])


def _checked(real: ArrayLike, fake: ArrayLike, real_radii: Tensor | None, k: int) -> tuple[Tensor, Tensor, Tensor]:
    x, y = _features_2d(real, "real features"), _features_2d(fake, "fake features")
    if x.shape[1] != y.shape[1]:
        raise MetricsError(f"feature dims differ: real {x.shape[1]}, fake {y.shape[1]}")
    y = y.to(x.device)
    radii = knn_radii(x, k) if real_radii is None else _f64(real_radii).flatten()
    if radii.shape[0] != x.shape[0]:
        raise MetricsError(f"{radii.shape[0]} real radii for {x.shape[0]} real feature rows")
    return x, y, radii.to(x.device)


def precision_recall(real: ArrayLike, fake: ArrayLike, k: int = 3, real_radii: Tensor | None = None
                     ) -> dict[str, float]:
    """Improved precision and recall; ``real_radii`` (``knn_radii(real, k)``, e.g. cached) skips the real-real
    distances."""
    x, y, real_r = _checked(real, fake, real_radii, k)
    fake_r = knn_radii(y, k)
    fake_in_real = torch.zeros(y.shape[0], dtype=torch.bool, device=x.device)
    real_in_fake = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    for start in range(0, y.shape[0], CHUNK):
        d = _distances(y[start:start + CHUNK], x)  # (fakes in the block, reals)
        fake_in_real[start:start + CHUNK] = (d < real_r[None, :]).any(dim=1)
        real_in_fake |= (d < fake_r[start:start + CHUNK, None]).any(dim=0)
    return {"precision": float(fake_in_real.double().mean()), "recall": float(real_in_fake.double().mean())}


def density_coverage(real: ArrayLike, fake: ArrayLike, k: int = 5, real_radii: Tensor | None = None
                     ) -> dict[str, float]:
    """Density and coverage; ``real_radii`` as for :func:`precision_recall`."""
    x, y, real_r = _checked(real, fake, real_radii, k)
    balls_holding = torch.zeros(y.shape[0], dtype=torch.float64, device=x.device)
    nearest_fake = torch.full((x.shape[0],), float("inf"), dtype=torch.float64, device=x.device)
    for start in range(0, y.shape[0], CHUNK):
        d = _distances(y[start:start + CHUNK], x)
        balls_holding[start:start + CHUNK] = (d < real_r[None, :]).sum(dim=1)
        nearest_fake = torch.minimum(nearest_fake, d.min(dim=0).values)
    return {"density": float(balls_holding.mean() / k), "coverage": float((nearest_fake < real_r).double().mean())}
