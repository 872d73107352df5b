"""PSNR and SSIM as super-resolution papers report them (the BasicSR / MATLAB protocol).

The published numbers are computed on saved 8-bit PNGs, so both metrics first quantise their inputs: float images in
the framework's data space [-1, 1] become integer levels 0..255 (``(x + 1) * 127.5``, clamped, rounded). Then, per
image:

- ``crop_border`` pixels are removed from every side (papers crop ``scale`` pixels: the border is where every
  upsampler has to guess);
- ``y_channel=True`` scores RGB images on their luma Y (ITU-R BT.601 with MATLAB's ``rgb2ycbcr`` coefficients, Y in
  16..235, kept as a float as MATLAB does on ``im2double`` images); a one-channel image is scored as it is (grayscale
  test images have no chroma to drop, and MATLAB scripts use them unchanged);
- PSNR = 10 log10(255^2 / MSE) over all pixels and channels; identical images give ``inf`` (MSE 0), as
  scikit-image does;
- SSIM (Wang et al. 2004): an 11 x 11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, filtered
  without padding ("valid", as the authors' MATLAB code), the mean of the SSIM map; on RGB the mean over channels.
  Identical images give exactly 1.

Everything is computed in float64. Torch only: no Lightning, usable by models, callbacks and evaluation alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# MATLAB's rgb2ycbcr for R, G, B in [0, 1]: Y = 16 + 65.481 R + 128.553 G + 24.966 B (ITU-R BT.601, studio swing).
_Y_WEIGHTS = (65.481, 128.553, 24.966)
_Y_OFFSET = 16.0

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
PIXEL_MAX = 255.0


def quantize(images: Tensor) -> Tensor:
    """Float images in [-1, 1] -> float64 integer levels 0..255 (what a saved 8-bit PNG holds)."""
    return ((images.detach().double() + 1.0) * 127.5).clamp_(0.0, 255.0).round_()


def rgb_to_y(images: Tensor) -> Tensor:
    """Luma Y of RGB images (N, 3, H, W) given on the 0..255 scale -> (N, 1, H, W) in 16..235 (0..255 scale), by
    MATLAB's ``rgb2ycbcr`` coefficients (ITU-R BT.601). Not rounded: MATLAB scripts convert ``im2double`` images."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"rgb_to_y expects (N, 3, H, W) RGB images, got {tuple(images.shape)}")
    weights = torch.tensor(_Y_WEIGHTS, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True) / 255.0 + _Y_OFFSET


def _prepare(sr: Tensor, hr: Tensor, crop_border: int, y_channel: bool) -> tuple[Tensor, Tensor]:
    """Both images quantised, border-cropped and (``y_channel`` and RGB) reduced to Y, as float64 on 0..255."""
    if sr.shape != hr.shape or sr.dim() != 4 or sr.shape[1] not in (1, 3):
        raise ValueError(f"expected two (N, C, H, W) images of one shape with C = 1 or 3, got {tuple(sr.shape)} and "
                         f"{tuple(hr.shape)}")
    if crop_border < 0 or 2 * crop_border >= min(sr.shape[-2:]):
        raise ValueError(f"crop_border {crop_border} leaves nothing of {sr.shape[-2]}x{sr.shape[-1]} images")
    pair = []
    for images in (sr, hr):
        images = quantize(images)
        if crop_border:
            images = images[..., crop_border:-crop_border, crop_border:-crop_border]
        if y_channel and images.shape[1] == 3:
            images = rgb_to_y(images)
        pair.append(images)
    return pair[0], pair[1]


def psnr(sr: Tensor, hr: Tensor, *, crop_border: int, y_channel: bool) -> Tensor:
    """Peak signal-to-noise ratio in dB of each super-resolved image against its ground truth, on the saved-PNG
    levels (see the module docstring): float64 (N,); ``inf`` where the two images are identical."""
    sr, hr = _prepare(sr, hr, crop_border, y_channel)
    mse = (sr - hr).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(PIXEL_MAX**2 / mse)  # mse 0 -> inf (IEEE division), as scikit-image


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA, dtype: torch.dtype = torch.float64) -> Tensor:
    """The normalised 2-D Gaussian (size, size) of MATLAB's ``fspecial('gaussian', size, sigma)``."""
    offsets = torch.arange(size, dtype=dtype) - (size - 1) / 2
    line = torch.exp(-offsets.pow(2) / (2 * sigma**2))
    line = line / line.sum()
    return line[:, None] * line[None, :]


def ssim(sr: Tensor, hr: Tensor, *, crop_border: int, y_channel: bool) -> Tensor:
    """Structural similarity of each super-resolved image with its ground truth (Wang et al., on the saved-PNG
    levels; see the module docstring): float64 (N,), the mean over channels of each channel's mean SSIM map."""
    sr, hr = _prepare(sr, hr, crop_border, y_channel)
    if min(sr.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} after the border crop, got "
                         f"{sr.shape[-2]}x{sr.shape[-1]}")
    n, channels = sr.shape[:2]
    window = gaussian_window(dtype=sr.dtype).to(sr.device).expand(channels, 1, SSIM_WINDOW, SSIM_WINDOW)

    def blur(x: Tensor) -> Tensor:  # "valid": no padding, the SSIM map is (H - 10) x (W - 10)
        return F.conv2d(x, window, groups=channels)

    mu_x, mu_y = blur(sr), blur(hr)
    var_x = blur(sr * sr) - mu_x**2
    var_y = blur(hr * hr) - mu_y**2
    cov = blur(sr * hr) - mu_x * mu_y
    c1, c2 = (SSIM_K1 * PIXEL_MAX) ** 2, (SSIM_K2 * PIXEL_MAX) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.reshape(n, channels, -1).mean(2).mean(1)
