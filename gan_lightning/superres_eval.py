"""Super-resolution evaluation and tiled upscaling: pure functions over an ``upscale`` callable (no Lightning).

``evaluate_superres`` scores a model on test sets the way papers report it (``gan_lightning.metrics.pixel``: PSNR and
SSIM on saved-PNG levels, on the Y channel with ``scale`` border pixels cropped, and on RGB with the same crop), next
to bicubic upscaling (MATLAB ``imresize``) of the same LR images, the baseline every model must beat; given an LPIPS
network (``gan_lightning.metrics.perceptual.lpips_vgg``), also LPIPS (lower is better) of both against the HR, on the
same 8-bit levels as PSNR/SSIM (papers score saved PNGs), whole images at their own size, no border crop (as BasicSR's
``calculate_lpips``).

``upscale_tiled`` upscales an image of any size piece by piece so a large photograph fits in memory: the LR image is
cut into ``tile`` x ``tile`` cores, each core is upscaled together with ``overlap`` pixels of real context around it
(fewer at the image's edges, where the whole image has none either), and only the core's part of the output is kept.
For a fully convolutional network whose receptive field reaches at most ``overlap`` LR pixels from an output pixel,
the result is the whole-image result (to float rounding); with a smaller overlap, only outputs within (reach -
overlap) LR pixels of a seam can differ.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from gan_lightning.data_io import uint8_to_unit_range
from gan_lightning.errors import GanLightningError
from gan_lightning.imresize import imresize
from gan_lightning.metrics.pixel import psnr, quantize, ssim

Upscale = Callable[[Tensor], Tensor]
METRIC_NAMES = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")  # and "lpips" when an LPIPS network is given


def score_pair(sr: Tensor, hr: Tensor, scale: int, lpips: nn.Module | None = None) -> dict[str, float]:
    """PSNR / SSIM of one super-resolved image against its HR (both (1, C, H, W) in [-1, 1]), on Y and on RGB, with
    ``scale`` border pixels cropped (a grayscale image's Y and RGB scores are the same: it is scored as it is); with
    ``lpips``, LPIPS of the whole 8-bit images, computed on ``lpips``'s device."""
    scores = {}
    for space, y_channel in (("y", True), ("rgb", False)):
        scores[f"psnr_{space}"] = float(psnr(sr, hr, crop_border=scale, y_channel=y_channel)[0])
        scores[f"ssim_{space}"] = float(ssim(sr, hr, crop_border=scale, y_channel=y_channel)[0])
    if lpips is not None:
        device = next(lpips.buffers()).device
        sr_levels, hr_levels = (uint8_to_unit_range(quantize(image)).to(device) for image in (sr, hr))
        scores["lpips"] = float(lpips(sr_levels, hr_levels)[0])
    return scores


def _mean_scores(per_image: list[dict[str, float]]) -> dict[str, float]:
    return {name: sum(scores[name] for scores in per_image) / len(per_image) for name in per_image[0]}


def bicubic_upscale(lr: Tensor, scale: int) -> Tensor:
    """The bicubic baseline: MATLAB's ``imresize(lr, scale)`` of LR images in [-1, 1] (imresize's weights sum to one,
    so resizing in [-1, 1] is resizing the 0..255 levels)."""
    return imresize(lr, scale)


@torch.no_grad()
def evaluate_superres(upscale: Upscale, test_sets: Mapping[str, Sequence[tuple[Tensor, Tensor]]],
                      scale: int, lpips: nn.Module | None = None) -> dict[str, dict]:
    """Per test set, the mean over its images of PSNR-Y, SSIM-Y, PSNR-RGB and SSIM-RGB (and LPIPS with ``lpips``) of
    ``upscale(lr)`` against the HR, and the same of bicubic upscaling of the same LR:

    ``{"Set5": {"images": 5, "psnr_y": .., "ssim_y": .., "psnr_rgb": .., "ssim_rgb": .., "bicubic": {...}}}``.

    ``upscale`` takes one LR image (1, C, h, w) in [-1, 1] (on the CPU) and returns (1, C, h scale, w scale) (on any
    device); an image it reproduces exactly has PSNR inf, and so has its set's mean. A wrong output size, or an image
    too small for the border crop, SSIM's 11 x 11 window or LPIPS's VGG16, is one GanLightningError line."""
    results: dict[str, dict] = {}
    for name, pairs in test_sets.items():
        if not pairs:
            raise GanLightningError(f"test set {name} holds no images")
        model, bicubic = [], []
        for index, (lr, hr) in enumerate(pairs):
            sr = upscale(lr).detach().float().cpu()
            if sr.shape != hr.shape:
                raise GanLightningError(f"test set {name}: upscaling a {tuple(lr.shape)} LR image gave "
                                        f"{tuple(sr.shape)}, not the HR's {tuple(hr.shape)} (scale {scale})")
            try:
                model.append(score_pair(sr, hr, scale, lpips))
            except ValueError as error:  # an image too small for the border crop, SSIM's window or VGG16
                raise GanLightningError(f"test set {name}, image {index}: {error}") from None
            bicubic.append(score_pair(bicubic_upscale(lr, scale), hr, scale, lpips))
        results[name] = {"images": len(pairs), **_mean_scores(model), "bicubic": _mean_scores(bicubic)}
    return results


def tile_starts(length: int, tile: int) -> list[int]:
    """Where the cores of ``tile`` pixels start along an axis of ``length`` (the last core may be shorter)."""
    return list(range(0, length, tile))


@torch.no_grad()
def upscale_tiled(upscale: Upscale, image: Tensor, scale: int, tile: int, overlap: int) -> Tensor:
    """``upscale(image)`` for an LR ``image`` (N, C, h, w) of any size, computed ``tile`` x ``tile`` LR pixels at a
    time with ``overlap`` LR pixels of context on each side (see the module docstring); the output is assembled on
    the device and in the dtype ``upscale`` returns."""
    if tile < 1 or overlap < 0:
        raise ValueError(f"tile must be >= 1 and overlap >= 0, got tile {tile} and overlap {overlap}")
    height, width = image.shape[-2:]
    output = None
    for top in tile_starts(height, tile):
        for left in tile_starts(width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            # the core with its context, clipped to the image: offsets of the core inside the piece
            top_0, left_0 = max(top - overlap, 0), max(left - overlap, 0)
            piece = image[..., top_0 : min(bottom + overlap, height), left_0 : min(right + overlap, width)]
            result = upscale(piece)
            expected = (*piece.shape[:-2], piece.shape[-2] * scale, piece.shape[-1] * scale)
            if tuple(result.shape) != expected:
                raise ValueError(f"upscaling a {tuple(piece.shape)} tile gave {tuple(result.shape)}, not "
                                 f"{expected} (scale {scale})")
            if output is None:
                output = result.new_empty((*image.shape[:-2], height * scale, width * scale))
            rows = slice((top - top_0) * scale, (bottom - top_0) * scale)
            cols = slice((left - left_0) * scale, (right - left_0) * scale)
            output[..., top * scale : bottom * scale, left * scale : right * scale] = result[..., rows, cols]
    return output
