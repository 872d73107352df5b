"""MATLAB-compatible bicubic imresize: MATLAB's own outputs, hand-computed kernels, edges, a port's table."""

import pytest
import torch
import torch.nn.functional as F

from gan_lightning.imresize import cubic, imresize, output_length, resize_matrix


def _pattern(h: int, w: int) -> torch.Tensor:
    """A deterministic 0..255 test image (no symmetry that could hide an index error)."""
    i, j = torch.arange(h)[:, None], torch.arange(w)[None, :]
    return ((i * 37 + j * 91 + i * j * 13) % 256).double()


# imresize(_pattern(h, w), scale) as measured on 2026-12-05 with basicsr 1.4.2's utils/matlab_functions.imresize (the
# MATLAB port the SR literature evaluates with; its sdist was unpacked and the file imported on its own, no CUDA
# ops), fed [0, 1] float32 images and scaled back by 255. Rounded to 4 decimals.
REFERENCE = {
    (0.5, 8, 8): [[71.9554, 130.707, 113.1954, 130.3844], [131.9921, 149.2244, 135.5919, 152.8243],
                  [141.9805, 147.1311, 135.7713, 182.4843], [123.3454, 119.0391, 132.3398, 166.0335]],
    (1 / 3, 9, 9): [[104.808, 120.669, 151.6301], [143.6676, 145.8436, 144.8592], [127.043, 136.2529, 143.0046]],
    (0.25, 8, 12): [[116.9203, 134.6342, 134.2009], [133.2442, 147.0221, 119.4783]],
    (2, 3, 4): [[-11.8857, 12.6638, 61.7629, 114.7578, 171.6484, 148.6433, 45.7424, -5.708],
                [-2.1018, 23.2791, 74.0409, 130.6777, 193.1895, 172.045, 67.2443, 14.844],
                [17.4661, 44.5097, 98.597, 162.5176, 236.2715, 218.8483, 110.2481, 55.948],
                [37.0339, 67.6622, 128.9186, 175.7793, 208.2441, 194.5423, 134.6738, 104.7395],
                [56.6018, 92.7365, 165.0059, 170.4629, 109.1074, 99.1269, 140.5213, 161.2185],
                [66.3857, 105.2737, 183.0496, 167.8047, 59.5391, 51.4192, 143.4451, 189.458]],
}
# x4 enlargement of a 2 x 2 image: the kernel reaches past both edges (mirrored more than once); rows 0, 1 and 7
REFERENCE_X4_UP = {0: [-14.8215, -9.2292, 3.1787, 26.5964, 54.2083, 77.626, 90.0339, 95.6262],
                   1: [-12.6042, -6.9611, 5.5594, 29.1898, 57.0524, 80.6828, 93.2033, 98.8464],
                   7: [28.9699, 35.5651, 50.1983, 77.8157, 110.3796, 137.9971, 152.6302, 159.2254]}


# MATLAB itself: the red channel of baboon.png (Set14's mandrill, 480 x 492) at rows 204..227, columns 240..263, and
# MATLAB's ``imresize(im2double(img), s, 'bicubic')`` written as uint8 PNGs, as published in
# github.com/xinntao/matlab_functions_verification (imresize_bicubic/*.png, made by its imresize_bicubic.m). The
# patch sits on multiples of 12, so its x2 / x3 / x4 grids are the whole image's; away from the patch's own edges
# (2 LR pixels for the shrinks, 4 output pixels for the x2 enlargement of its top-left 12 x 12) MATLAB's whole-image
# output is what the patch alone must give. Hex strings of uint8 rows.
BABOON_PATCH = (
    "d1d1cdd1d0d2d0d0cda6a6cdd2edd3e9d5e5e7e9d3eaebebcbd1cdcdd0cda6b2a6acadcdd2ead4e5ead5d5eaeaeaf0f5cbcb"
    "cdcba6adada9adadc7d1e5e8d5e9d5e7e7ead3e9f5f0cbcbcdcdcbadcbadadc7b2d1cbd1e7d4d4d5ead3eaeaf5f0d1d1d1cd"
    "cba6cdadcba6c7a6cdd1e8e8d4e5eaf0eaeaeaf0d0d1cdcdc7adcbadadcba6d1d9e5e5eae9e7eaeaeaeaebebd1cdcbcbadc7"
    "adadadc7cdb2cfcdd4d3eae7e7e9eaeaf0f5cba6cbcdcdc7c7adcdd1d0d0d1d1d2e9eaeaeaeaf0f5f5f0adadc7cdcda6a9c7"
    "cdd0d1cfafe6e8e9eaeaeaeaf4eaf0f0cdadcdd0a6a9adc7adc7aac7c7cbd1e8eaeaeaeaf0f0f0f5a6a6cdcdcdadcda6cba6"
    "d1d1d9d4d4e9eae7e9edf5f0f0eaa6a6cda6ada6a6adada6b2b2d1e5d3eae7e7e7eaeaebf0eba6a6a9ada9a9a9ada6b2a6d2"
    "d2d3d2d5e9d5f0f0f4eaf5eba6a6a6886ca6adadcdd0d2d3b1d3d4d2e9eae9eaf0f0f0f5a6a64c64a664ada6a6d0d1d1d1b2"
    "afd4d3e9e9d3eaf5f5eba6a6a664a688a6a6a6cbb2b2cfa6d1d4d5ead3f0f4ebf5ebcda688a688a6a6cdcba6ada6a6d4b1d5"
    "e5e7f5f4eaf5f5ebcdadad88a6a9a6cdadadadadadadc7cfd3e8e7e9e9f0ebf0a6a688a68888a6cdada6a6adadc7c7cbcfd9"
    "e9eaf0eaf5f5cda66ca6a6cda6a6cbadadadadb2adb2a6cfe5e5f0f5eaf4d0a6a6cdcda6cda6adada9adadadadc7afd9e5e9"
    "ebf0f0f5cdcda6a6a6a6cdada9a9cba9adaac7c7cbd4e5e9eaeaeaf0d0a6a6a9adcda9a9adadadadadadadc7acc7cfcfe5ea"
    "f0eba6a6a6a9ada6a6a9ad88a9a9a9adadadc7cbd4d4e5eaf0f5"
)
MATLAB_DOWN = {
    2: ("bdb9b7bad4e4e2eac2b5c4cad0dceae9b6b8c6c7cce3ebebb3b1aebed6dfe8eb98abbac6ccd4e4eb8ba5bdc6bdc7e1e4"
        "9ab8b5a8b5cae2eda5b3b2aab3bbcae8"),
    3: "bbc9d3e8b3bdd6e7acc5cadeb3b3bada",
    4: "bfd9becc",
}
MATLAB_UP_X2 = (
    "cdcdcec5b2acb2b2aba8a9aaaaaaa9b0cdcecec4b1a8a9adb3b2aba9abaeb1b7cccdcdcbc6bdafb1c1c2b2a9a9b0c0c2cece"
    "cdced0c6b0b1c8c9b4acb1b7bfbfd1d0cecdcfc4acadc7c9b3b1c3c2afafd1d0cecdcec2abacc7c9b3b1c3c3b0aecfcecdcd"
    "cdc2adafc8c9b4acb1b8c2becdcccdcac4bdb4b6c2c1b2aaa8b2c8c7cccccdc5b4b2bfc0b5afaeaba8b0c2cac9cccdc6b5b5"
    "c6c6b7aeacadb0b8c4ccc4cecdcbc7c6c9c9c6bdaeafc0caced0c2cdcdced1cdc3c0c3bfb4b7c9d2d2d2c1cacccfd2c9b4aa"
    "adb3bdc6cdd1d1d2c2cbcecdc8bdaaa2a3aec3cbc7c8cdcec5cfd2c9b3a8a7a7a6b1c5c7b5b6c7c7c6d1d3c9b4a9a9acb2b8"
    "bfbeb4b4bebd"
)


@pytest.mark.parametrize("key", list(REFERENCE))
def test_matches_the_recorded_matlab_port_table(key):
    scale, h, w = key
    got = imresize(_pattern(h, w)[None, None], scale)[0, 0]
    torch.testing.assert_close(got, torch.tensor(REFERENCE[key], dtype=torch.float64), rtol=0, atol=1e-3)


def test_x4_enlargement_of_a_tiny_image_matches_the_table():
    got = imresize(_pattern(2, 2)[None, None], 4)[0, 0]
    assert got.shape == (8, 8)
    for row, values in REFERENCE_X4_UP.items():
        torch.testing.assert_close(got[row], torch.tensor(values, dtype=torch.float64), rtol=0, atol=1e-3)


def test_cubic_kernel_hand_values():
    # a = -0.5: k(0) = 1, k(1) = k(2) = 0, k(0.5) = 0.5625, k(1.5) = -0.0625
    got = cubic(torch.tensor([0.0, 0.5, -0.5, 1.0, 1.5, 2.0, 2.5]))
    assert got.tolist() == [1.0, 0.5625, 0.5625, 0.0, -0.0625, 0.0, 0.0]


def test_x2_shrink_interior_weights_by_hand():
    # Output pixel x samples u = 2x - 0.5; the kernel 0.5 k(d / 2) at distances 0.5, 1.5, 2.5, 3.5 on each side
    # gives 0.5 * (k(0.25), k(0.75), k(1.25), k(1.75)) = (0.43359375, 0.11328125, -0.03515625, -0.01171875), sum 1.
    matrix = resize_matrix(16, 0.5)
    assert matrix.shape == (8, 16)
    half = [-0.01171875, -0.03515625, 0.11328125, 0.43359375]
    assert matrix[3, 3:11].tolist() == half + half[::-1]  # output 4 (1-based): u = 7.5, inputs 4..11 (0-based 3..10)
    assert matrix[3].sum().item() == 1.0


def test_x2_enlarge_weights_by_hand():
    # u = x / 2 + 0.25: output 2 (1-based) sits at u = 1.25, between inputs 1 and 2 at distances 0.25, 0.75 ...:
    # k(1.25), k(0.25), k(0.75), k(1.75) = -0.0703125, 0.8671875, 0.2265625, -0.0234375 on inputs 0, 1, 2, 3 (1-based)
    # input 0 is input 1 mirrored, so it adds to input 1's weight.
    row = resize_matrix(8, 2)[1]
    assert row[:3].tolist() == [-0.0703125 + 0.8671875, 0.2265625, -0.0234375]
    assert row[3:].abs().sum().item() == 0.0


def test_edges_are_mirrored_symmetrically():
    # The first output of a x2 shrink sits at u = 1.5 and reads inputs -2..5 (1-based) with the weights above;
    # inputs 0, -1, -2 are inputs 1, 2, 3 mirrored, so their weights fold onto those.
    matrix = resize_matrix(16, 0.5)
    a, b, c, d = -0.01171875, -0.03515625, 0.11328125, 0.43359375
    assert matrix[0, :5].tolist() == [d + c, d + b, c + a, b, a]
    assert matrix[0, 5:].abs().sum().item() == 0.0
    constant = torch.full((1, 1, 10, 13), 77.0)
    for scale in (0.25, 1 / 3, 0.5, 2, 3, 4):  # rows sum to one: a flat image stays flat, edges included
        torch.testing.assert_close(imresize(constant, scale), torch.full_like(imresize(constant, scale), 77.0))


@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.5, 2.0, 4.0])
def test_separable_rows_then_columns(scale):
    column, row = torch.rand(12, dtype=torch.float64), torch.rand(9, dtype=torch.float64)
    got = imresize(torch.outer(column, row)[None, None], scale)[0, 0]
    expected = torch.outer(resize_matrix(12, scale) @ column, resize_matrix(9, scale) @ row)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("factor", [2, 4])
def test_interior_equals_torch_antialiased_bicubic(factor):
    # PyTorch's antialiased bicubic uses the same widened a = -0.5 kernel but renormalises at the edges instead of
    # mirroring: away from the edges the two must agree.
    images = torch.rand(2, 3, 48, 40, dtype=torch.float64)
    ours = imresize(images, 1 / factor)
    theirs = F.interpolate(images, scale_factor=1 / factor, mode="bicubic", antialias=True, align_corners=False)
    inner = slice(3, -3)
    torch.testing.assert_close(ours[..., inner, inner], theirs[..., inner, inner], rtol=0, atol=1e-10)


def test_shapes_dtypes_and_batching():
    images = torch.rand(3, 2, 30, 22)
    assert imresize(images, 1 / 3).shape == (3, 2, 10, 8)  # ceil(22 / 3) = 8, as MATLAB
    assert imresize(images, 4).shape == (3, 2, 120, 88) and imresize(images, 4).dtype == torch.float32
    one_by_one = torch.cat([imresize(image[None], 0.5) for image in images])
    torch.testing.assert_close(imresize(images, 0.5), one_by_one, rtol=0, atol=0)
    assert output_length(96, 1 / 3) == 32 and output_length(7, 4) == 28
    with pytest.raises(TypeError, match="float"):
        imresize(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), 0.5)


def _hex_image(text: str, side: int) -> torch.Tensor:
    return torch.frombuffer(bytearray.fromhex(text), dtype=torch.uint8).view(side, side)


def _rounded(images: torch.Tensor) -> torch.Tensor:  # imwrite of a double image: half away from zero, clamped
    return (images + 0.5).floor().clamp(0, 255).to(torch.uint8)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_shrinking_matches_matlab_outputs(factor):
    patch = _hex_image(BABOON_PATCH, 24)
    side = 24 // factor - 4
    got = _rounded(imresize(patch.double(), 1 / factor))[2:-2, 2:-2]
    assert torch.equal(got, _hex_image(MATLAB_DOWN[factor], side))


def test_enlarging_matches_matlab_output():
    patch = _hex_image(BABOON_PATCH, 24)[:12, :12]
    got = _rounded(imresize(patch.double(), 2))[4:-4, 4:-4]
    assert torch.equal(got, _hex_image(MATLAB_UP_X2, 16))
