"""The latent prior, and latent-space tools (Radford et al. 2015; White 2016): interpolation grids and latent
arithmetic.

Pure tensor functions on latent vectors; ``gan-lightning sample --interpolate`` / ``--arithmetic`` render
them through a checkpoint's (EMA) generator.
"""

from __future__ import annotations

import torch
from torch import Tensor


def sample_prior(n: int, dim: int, means: Tensor | None = None, component_std: float = 1.0,
                 generator: torch.Generator | None = None, device: torch.device | str | None = None) -> Tensor:
    """n latents (n, dim): N(0, I) when ``means`` is None, else the mixture of N(means[k], component_std^2 I)
    with k uniform over the rows of ``means`` (K, dim)."""
    noise = torch.randn(n, dim, generator=generator, device=device)
    if means is None:
        return noise
    components = torch.randint(means.shape[0], (n,), generator=generator, device=device)
    return means[components] + component_std * noise


def slerp(z_a: Tensor, z_b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation: stays at the typical norm of Gaussian latents, where a straight line between
    two samples passes through the low-density region near the origin (White 2016). Falls back to a straight
    line for (nearly) parallel vectors. ``t``: (T,) in [0, 1]; z_a, z_b: (D,) -> (T, D)."""
    cos = torch.dot(z_a / z_a.norm(), z_b / z_b.norm()).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    t = t.to(z_a.dtype).unsqueeze(1)
    if omega.abs() < 1e-4:
        return (1 - t) * z_a + t * z_b
    return (torch.sin((1 - t) * omega) * z_a + torch.sin(t * omega) * z_b) / torch.sin(omega)


def interpolate(z_a: Tensor, z_b: Tensor, steps: int, method: str = "slerp") -> Tensor:
    """``steps`` latents from z_a to z_b inclusive, (steps, D)."""
    if steps < 2:
        raise ValueError(f"interpolate: steps must be >= 2, got {steps}")
    t = torch.linspace(0.0, 1.0, steps, device=z_a.device)
    if method == "slerp":
        return slerp(z_a, z_b, t)
    if method == "lerp":
        return torch.lerp(z_a.unsqueeze(0), z_b.unsqueeze(0), t.to(z_a.dtype).unsqueeze(1))
    raise ValueError(f"interpolate: unknown method {method!r}; accepted: slerp, lerp")


def interpolation_grid(starts: Tensor, ends: Tensor, steps: int, method: str = "slerp") -> Tensor:
    """Row r walks from starts[r] to ends[r] in ``steps`` latents: (R * steps, D), row-major (a grid of
    ``steps`` columns)."""
    if starts.shape != ends.shape or starts.dim() != 2:
        raise ValueError(f"interpolation_grid: starts {tuple(starts.shape)} and ends {tuple(ends.shape)} "
                         "must both be (R, D)")
    return torch.cat([interpolate(a, b, steps, method) for a, b in zip(starts, ends, strict=True)])


def latent_arithmetic(z_a: Tensor, z_b: Tensor, z_c: Tensor) -> Tensor:
    """z_a + z_b - z_c (e.g. "smiling woman" - "neutral woman" + "neutral man").

    Each argument is a latent (D,) or a group (K, D) of latents showing the same concept, averaged first:
    Radford et al. average three exemplars per concept, which makes the result far more stable.
    """
    def mean(z: Tensor) -> Tensor:
        return z.mean(0) if z.dim() == 2 else z

    return mean(z_a) + mean(z_b) - mean(z_c)
