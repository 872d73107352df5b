"""Perceptual path length (Karras et al. 2019, "A Style-Based Generator Architecture..."; as stylegan2-ada-pytorch's
``ppl2_wend``): how much the image changes, perceptually, for a small step in W.

For each sample: z0, z1 ~ prior (the same class for both in conditional models), w0, w1 their mapped ws, and, with
``end`` sampling, t = 0 (``full``: t ~ U[0, 1]); the two images at w(t) = lerp(w0, w1, t) and w(t + eps), eps 1e-4,
rendered with the same noise maps (drawn afresh for every pair); the path length is the perceptual distance between
them divided by eps^2. The score is the mean over the samples between the 1st (lower) and 99th (higher) percentile,
as the reference. No face crop (the reference's ``ppl_wend`` crops FFHQ faces; ``ppl2_wend`` does not), no
truncation. The distance is a ``PerceptualDistance`` (``gan_lightning.metrics.perceptual``): VGG16 LPIPS-style when
its weights are given, else the MNIST net's for digits; scores are comparable only with the same distance.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gan_lightning.metrics.errors import MetricsError

EPSILON = 1e-4
SAMPLINGS = ("end", "full")


def path_lengths(mapping: Callable[[Tensor, Tensor | None], Tensor], synthesis: Callable[[Tensor], Tensor],
                 sample_inputs: Callable[[int], tuple[Tensor, Tensor | None]],
                 distance: Callable[[Tensor, Tensor], Tensor], n: int, epsilon: float = EPSILON,
                 sampling: str = "end", batch_size: int = 64, generator: torch.Generator | None = None) -> Tensor:
    """(n,) path lengths. ``sample_inputs(m)`` -> (m latents, m labels or None); ``mapping(z, labels)`` -> ws
    (m x w_dim, or m x num_ws x w_dim); ``synthesis(ws)`` renders a batch holding both ends of every pair (first
    halves, then second), so a synthesis that keeps noise per sample must repeat it; ``distance(a, b)`` -> (m,)."""
    if sampling not in SAMPLINGS:
        raise MetricsError(f"ppl sampling {sampling!r}; accepted: {', '.join(SAMPLINGS)}")
    lengths = []
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        z, labels = sample_inputs(2 * size)
        pair_labels = None if labels is None else torch.cat([labels[:size], labels[:size]])
        w0, w1 = mapping(z, pair_labels).chunk(2)
        t = torch.rand(size, generator=generator).to(w0) if sampling == "full" else torch.zeros(size).to(w0)
        t = t.reshape(-1, *([1] * (w0.dim() - 1)))
        images = synthesis(torch.cat([w0.lerp(w1, t), w0.lerp(w1, t + epsilon)]))
        first, second = images.chunk(2)
        lengths.append(distance(first, second).detach().double() / epsilon**2)
    return torch.cat(lengths)[:n]


def ppl_score(lengths: Tensor) -> float:
    """The mean of the path lengths between their 1st (lower) and 99th (higher) percentile, as the reference."""
    values = lengths.cpu().numpy()
    low, high = np.percentile(values, 1, method="lower"), np.percentile(values, 99, method="higher")
    return float(values[(values >= low) & (values <= high)].mean())


def check_model(model: Any) -> None:
    """One line for a model without a mapping network (no W to measure in)."""
    net = getattr(model, "sampling_generator", None)
    if not hasattr(net, "mapping") or not hasattr(net, "synthesis"):
        raise MetricsError(f"ppl is measured in W: model {model.registry_name} has no mapping network (stylegan2, "
                           "cstylegan2 have one)")


@torch.no_grad()
def perceptual_path_length(model: Any, distance: Any, n: int, epsilon: float = EPSILON, sampling: str = "end",
                           batch_size: int = 64, seed: int = 0) -> dict[str, Any]:
    """PPL in W of a latent model with a mapping network (its EMA generator where there is one); one line for a
    model without one."""
    check_model(model)
    if n < 100:
        raise MetricsError(f"ppl needs --n >= 100 (it drops the samples below the 1st and above the 99th "
                           f"percentile), got {n}")
    net = copy.deepcopy(model.sampling_generator).eval()  # its noise buffers are replaced below
    noise_layers = [m for m in net.synthesis.modules() if hasattr(m, "noise_const")]
    generator = torch.Generator().manual_seed(seed)

    def sample_inputs(m: int) -> tuple[Tensor, Tensor | None]:
        return model.sample_latent(m, generator), model.sample_labels(m, generator)

    def mapping(z: Tensor, labels: Tensor | None) -> Tensor:
        return net.mapping(z, *model.label_args(labels))

    def synthesis(w: Tensor) -> Tensor:
        pairs = w.shape[0] // 2
        for layer in noise_layers:  # fresh maps for every pair, the same for both of its ends
            noise = torch.randn((pairs, 1, *layer.noise_const.shape[-2:]), generator=generator)
            layer.noise_const = noise.repeat(2, 1, 1, 1).to(w.device)
        return net.synthesis(w.unsqueeze(1).expand(-1, net.num_ws, -1), noise_mode="const")

    lengths = path_lengths(mapping, synthesis, sample_inputs, distance.to(model.device), n, epsilon, sampling,
                           batch_size, generator)
    return {"ppl": ppl_score(lengths), "ppl_n": n, "ppl_epsilon": epsilon, "ppl_sampling": sampling,
            "ppl_distance": distance.name}
