"""MATLAB's ``imresize(image, scale)`` (bicubic, antialiased when shrinking) in pure torch, batched.

Super-resolution results are reported on LR images made by MATLAB's ``imresize``, so an LR made any other way
(PIL, OpenCV, ``F.interpolate``) shifts every PSNR by a few tenths of a dB. This follows MATLAB's algorithm:

- the output has ``ceil(size * scale)`` pixels per side; output pixel x (1-based) samples the input at
  u = x / scale + 0.5 (1 - 1 / scale) (pixel centres aligned, as ``align_corners=False``);
- the cubic convolution kernel with a = -0.5 (Keys), support 4; when shrinking (scale < 1) it is widened by 1 / scale
  and scaled by ``scale`` so it also low-pass filters (MATLAB's default ``Antialiasing`` true);
- each output pixel's weights are normalised to sum to 1;
- pixels beyond an edge are read mirrored, edge pixel repeated (MATLAB's ``symmetric`` padding, also for kernels
  wider than the image);
- rows first, then columns; arithmetic in float64 (MATLAB works in double), the result cast back to the input dtype.

The resampling along one axis is a fixed (out, in) matrix (``resize_matrix``), so a batch is two matrix products.
The result is not rounded: the superres data rounds it to uint8 levels as MATLAB does when it writes a uint8 image.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

KERNEL_SUPPORT = 4  # taps of the bicubic kernel at scale >= 1


def cubic(distance: Tensor) -> Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``), at ``distance`` (any shape)."""
    x = distance.abs()
    near = (1.5 * x**3 - 2.5 * x**2 + 1) * (x <= 1)
    far = (-0.5 * x**3 + 2.5 * x**2 - 4 * x + 2) * ((x > 1) & (x <= 2))
    return near + far


def output_length(in_length: int, scale: float) -> int:
    """MATLAB's ``ceil(in_length * scale)``, forgiving the float error of a scale such as 1/3 (96 * (1/3) may land a
    hair above 32)."""
    return max(1, math.ceil(in_length * scale - 1e-9))


def resize_matrix(in_length: int, scale: float, out_length: int | None = None) -> Tensor:
    """The float64 (out_length, in_length) matrix resampling one axis as MATLAB's bicubic ``imresize`` does."""
    out_length = output_length(in_length, scale) if out_length is None else out_length
    antialias = scale < 1
    width = KERNEL_SUPPORT / scale if antialias else KERNEL_SUPPORT
    x = torch.arange(1, out_length + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # where output pixel x samples the input (1-based coordinates)
    left = torch.floor(u - width / 2)
    taps = math.ceil(width) + 2  # one spare tap each side: those weights come out zero, which is harmless
    indices = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]
    distance = u[:, None] - indices
    weights = scale * cubic(distance * scale) if antialias else cubic(distance)
    weights = weights / weights.sum(1, keepdim=True)
    source = symmetric_index(indices.long() - 1, in_length)
    matrix = torch.zeros(out_length, in_length, dtype=torch.float64)
    return matrix.scatter_add_(1, source, weights)


def symmetric_index(indices: Tensor, length: int) -> Tensor:
    """Where 0-based ``indices`` (any integers) read from an axis of ``length`` under MATLAB's symmetric extension
    (the edge pixel repeated: ... 1 0 | 0 1 ... n-1 | n-1 n-2 ...), folding as often as needed."""
    folded = torch.remainder(indices, 2 * length)
    return torch.where(folded < length, folded, 2 * length - 1 - folded)


def bicubic_lr(hr: Tensor, scale: int) -> Tensor:
    """The low-resolution image of the published protocol: uint8 HR images (..., H, W) shrunk by MATLAB's bicubic
    ``imresize(hr, 1 / scale)`` and rounded to uint8 as MATLAB does when it saves them (half away from zero)."""
    if hr.dtype != torch.uint8:
        raise TypeError(f"bicubic_lr expects uint8 images, got {hr.dtype}")
    return imresize(hr.double(), 1 / scale).add_(0.5).floor_().clamp_(0, 255).to(torch.uint8)


def imresize(images: Tensor, scale: float) -> Tensor:
    """Resize float images (..., H, W) by ``scale`` (0.25 shrinks x4, 4 enlarges x4) as MATLAB's
    ``imresize(images, scale)`` with its defaults (bicubic, antialiasing): (..., ceil(H scale), ceil(W scale)) in the
    input's dtype, not rounded or clamped (bicubic overshoots at edges)."""
    if not images.is_floating_point():
        raise TypeError(f"imresize expects float images, got {images.dtype} (convert uint8 with .float())")
    if images.dim() < 2:
        raise ValueError(f"imresize expects (..., H, W) images, got shape {tuple(images.shape)}")
    if not scale > 0 or not math.isfinite(scale):
        raise ValueError(f"imresize scale must be a positive number, got {scale}")
    height, width = images.shape[-2:]
    rows = resize_matrix(height, scale).to(images.device)
    cols = resize_matrix(width, scale).to(images.device)
    resized = rows @ images.double() @ cols.T
    return resized.to(images.dtype)
