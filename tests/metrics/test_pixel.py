"""PSNR / SSIM / Y against scikit-image and hand-made cases (the super-resolution protocol of metrics.pixel)."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from gan_lightning.metrics.pixel import gaussian_window, psnr, quantize, rgb_to_y, ssim


def _levels_to_data(levels: np.ndarray) -> torch.Tensor:
    """uint8-valued (N, C, H, W) levels -> the framework's [-1, 1] data space (exactly invertible by quantize)."""
    return torch.from_numpy(levels.astype(np.float32)) / 127.5 - 1.0


def _pair(channels: int, seed: int, size=(40, 36)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    hr = rng.integers(0, 256, size=(2, channels, *size))
    sr = np.clip(hr + rng.normal(0, 20, size=hr.shape), 0, 255).round()  # correlated, like a real SR output
    return sr, hr.astype(np.float64)


def _skimage_y(levels: np.ndarray) -> np.ndarray:
    """Y by MATLAB's rgb2ycbcr formula written out per pixel (H, W, 3 on 0..255)."""
    r, g, b = levels[..., 0] / 255, levels[..., 1] / 255, levels[..., 2] / 255
    return 16 + 65.481 * r + 128.553 * g + 24.966 * b


def test_quantize_round_trips_levels_and_clamps():
    levels = np.arange(256, dtype=np.float64).reshape(1, 1, 16, 16)
    assert torch.equal(quantize(_levels_to_data(levels)), torch.from_numpy(levels))
    assert quantize(torch.tensor([-3.0, 3.0, 0.0])).tolist() == [0.0, 255.0, 128.0]  # 127.5 rounds to even: 128


def test_rgb_to_y_matlab_reference_values():
    # MATLAB rgb2ycbcr: black -> 16, white -> 235, pure red / green / blue -> 16 + 65.481 / 128.553 / 24.966 (x 255/255)
    pixels = torch.tensor([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=torch.float64)
    y = rgb_to_y(pixels.T.reshape(1, 3, 1, 5)).flatten()
    expected = torch.tensor([16.0, 235.0, 16 + 65.481, 16 + 128.553, 16 + 24.966], dtype=torch.float64)
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("crop", [0, 4])
def test_psnr_ssim_match_skimage_rgb_and_gray(channels, crop):
    sr, hr = _pair(channels, seed=channels * 10 + crop)
    got_psnr = psnr(_levels_to_data(sr), _levels_to_data(hr), crop_border=crop, y_channel=False)
    got_ssim = ssim(_levels_to_data(sr), _levels_to_data(hr), crop_border=crop, y_channel=False)
    for i in range(2):
        a, b = sr[i], hr[i]
        if crop:
            a, b = a[:, crop:-crop, crop:-crop], b[:, crop:-crop, crop:-crop]
        want_psnr = peak_signal_noise_ratio(b, a, data_range=255)
        want_ssim = structural_similarity(b, a, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                          data_range=255, channel_axis=0)
        assert abs(float(got_psnr[i]) - want_psnr) < 1e-6
        assert abs(float(got_ssim[i]) - want_ssim) < 1e-6


def test_y_channel_psnr_ssim_match_skimage_on_matlab_y():
    sr, hr = _pair(3, seed=7, size=(33, 47))
    got_psnr = psnr(_levels_to_data(sr), _levels_to_data(hr), crop_border=3, y_channel=True)
    got_ssim = ssim(_levels_to_data(sr), _levels_to_data(hr), crop_border=3, y_channel=True)
    for i in range(2):
        a = _skimage_y(sr[i].transpose(1, 2, 0))[3:-3, 3:-3]
        b = _skimage_y(hr[i].transpose(1, 2, 0))[3:-3, 3:-3]
        assert abs(float(got_psnr[i]) - peak_signal_noise_ratio(b, a, data_range=255)) < 1e-6
        want = structural_similarity(b, a, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=255)
        assert abs(float(got_ssim[i]) - want) < 1e-6


def test_identical_images_give_inf_psnr_and_ssim_one():
    sr, _ = _pair(3, seed=1)
    images = _levels_to_data(sr)
    assert torch.isinf(psnr(images, images, crop_border=2, y_channel=True)).all()
    assert ssim(images, images, crop_border=2, y_channel=False).tolist() == [1.0, 1.0]


def test_constant_offset_has_known_psnr():
    # every level off by 5: MSE = 25, PSNR = 10 log10(255^2 / 25) = 20 log10(51)
    hr = np.full((1, 3, 20, 20), 100.0)
    sr = hr + 5
    got = float(psnr(_levels_to_data(sr), _levels_to_data(hr), crop_border=0, y_channel=False))
    assert got == pytest.approx(20 * math.log10(51), abs=1e-9)
    # on Y, an offset of 5 on R, G and B moves Y by 5 * 219 / 255
    got_y = float(psnr(_levels_to_data(sr), _levels_to_data(hr), crop_border=0, y_channel=True))
    assert got_y == pytest.approx(20 * math.log10(255 / (5 * 219 / 255)), abs=1e-9)


def test_border_crop_ignores_the_border():
    hr = np.full((1, 1, 20, 20), 50.0)
    sr = hr.copy()
    sr[..., :2, :] = 255  # wrong only in the top two rows
    assert torch.isinf(psnr(_levels_to_data(sr), _levels_to_data(hr), crop_border=2, y_channel=True)).all()
    assert float(psnr(_levels_to_data(sr), _levels_to_data(hr), crop_border=1, y_channel=True)) < 30


def test_gaussian_window_is_fspecial():
    window = gaussian_window()
    assert window.shape == (11, 11) and float(window.sum()) == pytest.approx(1.0, abs=1e-15)
    # fspecial('gaussian', 11, 1.5): centre / corner = exp(50 / 4.5)
    assert float(window[5, 5] / window[0, 0]) == pytest.approx(math.exp(50 / 4.5), rel=1e-12)


def test_bad_shapes_are_refused():
    a = torch.zeros(1, 3, 16, 16)
    with pytest.raises(ValueError, match="one shape"):
        psnr(a, torch.zeros(1, 3, 16, 15), crop_border=0, y_channel=False)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(a, a, crop_border=4, y_channel=False)
