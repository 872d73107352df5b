"""Super-resolution evaluation (model vs bicubic on Y and RGB) and tiled upscaling (equal to whole-image upscaling)."""

import math

import pytest
import torch
from torch import nn

from gan_lightning.errors import GanLightningError
from gan_lightning.imresize import imresize
from gan_lightning.metrics.pixel import psnr, ssim
from gan_lightning.superres_eval import evaluate_superres, upscale_tiled


def _levels(shape, seed):
    return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed)).float() / 127.5 - 1


def _test_set(channels: int, n: int = 3):
    pairs = []
    for i in range(n):
        hr = imresize(_levels((1, channels, 6 + i, 5 + i), i), 4).clamp(-1, 1)  # smooth 24+ px HR images
        lr = imresize(hr, 0.25)
        pairs.append((lr, hr))
    return pairs


def test_evaluation_reports_model_and_bicubic_on_y_and_rgb():
    pairs = _test_set(3)
    oracle = {id(lr): hr for lr, hr in pairs}
    results = evaluate_superres(lambda lr: oracle[id(lr)], {"toy": pairs}, scale=4)
    toy = results["toy"]
    assert toy["images"] == 3 and math.isinf(toy["psnr_y"]) and math.isinf(toy["psnr_rgb"])
    assert toy["ssim_y"] == toy["ssim_rgb"] == 1.0
    expected = {name: 0.0 for name in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")}
    for lr, hr in pairs:  # the bicubic entry by hand: the mean over images of each metric, border 4
        sr = imresize(lr, 4)
        expected["psnr_y"] += float(psnr(sr, hr, crop_border=4, y_channel=True)) / 3
        expected["ssim_y"] += float(ssim(sr, hr, crop_border=4, y_channel=True)) / 3
        expected["psnr_rgb"] += float(psnr(sr, hr, crop_border=4, y_channel=False)) / 3
        expected["ssim_rgb"] += float(ssim(sr, hr, crop_border=4, y_channel=False)) / 3
    assert toy["bicubic"] == pytest.approx(expected, abs=1e-12)
    assert toy["bicubic"]["psnr_y"] != toy["bicubic"]["psnr_rgb"]  # Y is not the RGB mean


def test_bicubic_model_scores_as_the_baseline_and_gray_y_is_rgb():
    pairs = _test_set(1)
    results = evaluate_superres(lambda lr: imresize(lr, 4), {"gray": pairs, "again": pairs[:1]}, scale=4)
    gray = results["gray"]
    assert {k: gray[k] for k in gray["bicubic"]} == gray["bicubic"]
    assert gray["psnr_y"] == gray["psnr_rgb"] and gray["ssim_y"] == gray["ssim_rgb"]
    assert list(results) == ["gray", "again"] and results["again"]["images"] == 1


def test_evaluation_refuses_a_wrong_output_size_or_a_tiny_image_in_one_line():
    with pytest.raises(GanLightningError, match=r"gave \(1, 3, 12, 10\), not the HR's \(1, 3, 24, 20\)"):
        evaluate_superres(lambda lr: imresize(lr, 2), {"toy": _test_set(3, 1)}, scale=4)
    tiny = [(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 16, 16))]  # 8 x 8 after the border crop: no SSIM window
    with pytest.raises(GanLightningError, match=r"test set tiny, image 0: SSIM needs images of at least 11x11"):
        evaluate_superres(lambda lr: imresize(lr, 4), {"tiny": tiny}, scale=4)


class _TinySR(nn.Module):
    """Fully convolutional x``scale`` net: two 3 x 3 convs, so an output reads LR pixels up to 2 away."""

    reach = 2

    def __init__(self, scale: int):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3 * scale**2, 3, padding=1),
                                  nn.PixelShuffle(scale))

    def forward(self, x):
        return self.body(x)


@pytest.mark.parametrize("scale", [2, 3])
def test_tiled_equals_whole_image_when_the_overlap_covers_the_reach(scale):
    net = _TinySR(scale).eval()
    image = torch.rand(2, 3, 23, 29)
    with torch.no_grad():
        whole = net(image)
    tiled = upscale_tiled(net, image, scale, tile=8, overlap=_TinySR.reach)
    assert tiled.shape == whole.shape == (2, 3, 23 * scale, 29 * scale)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-6)  # conv sums in another order: float rounding only
    torch.testing.assert_close(upscale_tiled(net, image, scale, tile=64, overlap=0), whole, rtol=0, atol=1e-6)


def test_without_overlap_only_the_seams_differ():
    scale, tile = 2, 8
    net = _TinySR(scale).eval()
    image = torch.rand(1, 3, 23, 29)
    with torch.no_grad():
        whole = net(image)
    difference = (upscale_tiled(net, image, scale, tile=tile, overlap=0) - whole).abs()[0].amax(0)

    def near_seam(length: int) -> torch.Tensor:
        lr = torch.arange(length * scale) // scale  # the LR pixel each output row/column belongs to
        seams = torch.arange(tile, length, tile)  # first LR pixel after each internal seam
        return ((lr[:, None] - seams[None, :] + 0.5).abs() < _TinySR.reach).any(1)

    seam = near_seam(23)[:, None] | near_seam(29)[None, :]
    assert difference[~seam].max() < 1e-6  # away from seams: the whole-image result
    assert difference[seam].max() > 1e-3  # at them the missing context shows: the test can see a seam


def test_tiling_refuses_bad_settings_and_wrong_scales():
    net = _TinySR(2).eval()
    with pytest.raises(ValueError, match="tile must be >= 1"):
        upscale_tiled(net, torch.rand(1, 3, 8, 8), 2, tile=0, overlap=2)
    with pytest.raises(ValueError, match=r"not \(1, 3, 24, 24\) \(scale 3\)"):
        upscale_tiled(net, torch.rand(1, 3, 8, 8), 3, tile=8, overlap=2)
