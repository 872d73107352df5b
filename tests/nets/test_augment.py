"""The augmentation pipelines of gan_lightning.nets.augment against hand computation: identity at p = 0, exact blit
transforms, colour matrices as their formulas, gradients, and pairs augmented jointly."""

from __future__ import annotations

import math

import pytest
import torch

from gan_lightning.nets.augment import (
    ADA_PIPELINES,
    BRIGHTNESS_STD,
    DIFFAUGMENT_OPS,
    ada_augment,
    apply_color_matrix,
    diff_augment,
    shift,
)

BGC = ADA_PIPELINES["bgc"]


def images(n: int = 16, channels: int = 3, size: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("channels", [1, 3, 6])
def test_p_zero_is_the_identity_exactly(channels: int) -> None:
    x = images(channels=channels)
    group = 3 if channels == 6 else channels  # 6: an (input, output) pair of RGB images
    assert torch.equal(ada_augment(x, 0.0, BGC, group), x)
    assert torch.equal(ada_augment(x, torch.tensor(0.0), BGC, group), x)


@pytest.mark.parametrize("op", BGC)
def test_each_ada_op_keeps_shapes_changes_images_and_is_differentiable(op: str) -> None:
    x = images(n=4, channels=3, size=6).double().requires_grad_(True)

    def augmented(inp: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(3)  # the same draws at every evaluation
        return ada_augment(inp, 1.0, (op,), 3)

    out = augmented(x)
    assert out.shape == x.shape
    assert not torch.equal(out, x)
    assert torch.autograd.gradcheck(augmented, (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("op", DIFFAUGMENT_OPS)
def test_each_diffaugment_op_keeps_shapes_and_is_differentiable(op: str) -> None:
    x = images(n=4, channels=3, size=8).double().requires_grad_(True)

    def augmented(inp: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(5)
        return diff_augment(inp, (op,), 3)

    out = augmented(x)
    assert out.shape == x.shape and not torch.equal(out, x)
    assert torch.autograd.gradcheck(augmented, (x,), eps=1e-6, atol=1e-5)


def test_xflip_gives_the_image_or_its_mirror() -> None:
    x = torch.arange(16 * 8 * 8, dtype=torch.float32).reshape(16, 1, 8, 8)
    torch.manual_seed(0)
    out = ada_augment(x, 1.0, ("xflip",), 1)
    flipped = [torch.equal(o, xi[..., torch.arange(7, -1, -1)]) for o, xi in zip(out, x, strict=True)]
    kept = [torch.equal(o, xi) for o, xi in zip(out, x, strict=True)]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))  # each sample: exactly one of the two
    assert 0 < sum(flipped) < 16  # a fair coin at p = 1


def test_rotate90_gives_a_quarter_turn_of_each_image() -> None:
    x = torch.arange(32 * 5 * 5, dtype=torch.float32).reshape(32, 1, 5, 5)
    torch.manual_seed(0)
    out = ada_augment(x, 1.0, ("rotate90",), 1)
    turns = []
    for o, xi in zip(out, x, strict=True):
        # A quarter turn counter-clockwise by hand: new[i][j] = old[j][n - 1 - i].
        rotations = [xi[0]]
        for _ in range(3):
            rotations.append(torch.stack([rotations[-1][:, 4 - i] for i in range(5)]))
        matches = [k for k, r in enumerate(rotations) if torch.equal(o[0], r)]
        assert len(matches) == 1
        turns.append(matches[0])
    assert set(turns) == {0, 1, 2, 3}


def test_integer_shift_by_hand() -> None:
    row = torch.tensor([[[[1.0, 2.0, 3.0, 4.0]]]])
    right = torch.tensor([1]), torch.tensor([0])
    assert shift(row, *right).flatten().tolist() == [1.0, 1.0, 2.0, 3.0]  # mirrored in from the left border
    assert shift(row, *right, padding="zeros").flatten().tolist() == [0.0, 1.0, 2.0, 3.0]
    assert shift(row, torch.tensor([-2]), torch.tensor([0])).flatten().tolist() == [3.0, 4.0, 4.0, 3.0]
    column = row.transpose(2, 3)  # 4 x 1: dy moves it down
    assert shift(column, torch.tensor([0]), torch.tensor([1])).flatten().tolist() == [1.0, 1.0, 2.0, 3.0]


def test_xint_translates_by_whole_pixels_within_an_eighth() -> None:
    x = images(n=16, channels=1, size=16)
    torch.manual_seed(1)
    out = ada_augment(x, 1.0, ("xint",), 1)
    limit = round(0.125 * 16)
    moves = set()
    for o, xi in zip(out, x, strict=True):
        found = [(dx, dy) for dx in range(-limit, limit + 1) for dy in range(-limit, limit + 1)
                 if torch.equal(o, shift(xi[None], torch.tensor([dx]), torch.tensor([dy]))[0])]
        assert found, "not an integer translation"
        moves.add(found[0])
    assert len(moves) > 3


def test_brightness_adds_its_draw_to_every_pixel() -> None:
    x = images(n=8, channels=3)
    torch.manual_seed(7)
    out = ada_augment(x, 1.0, ("brightness",), 3)
    torch.manual_seed(7)  # the pipeline's draws, in its order: the Bernoulli(p) choice, then b ~ N(0, 0.2)
    torch.rand(8)
    b = torch.randn(8) * BRIGHTNESS_STD
    torch.testing.assert_close(out, x + b[:, None, None, None], rtol=0, atol=1e-6)


def test_luma_flip_of_a_grey_image_is_its_negative() -> None:
    x = images(n=16, channels=1)
    torch.manual_seed(2)
    out = ada_augment(x, 1.0, ("lumaflip",), 1)
    negated = [torch.allclose(o, -xi, atol=1e-6) for o, xi in zip(out, x, strict=True)]
    kept = [torch.equal(o, xi) for o, xi in zip(out, x, strict=True)]
    assert all(a != b for a, b in zip(negated, kept, strict=True)) and 0 < sum(negated) < 16


@pytest.mark.parametrize("op", ["hue", "saturation"])
def test_hue_and_saturation_keep_grey_pixels_and_luma(op: str) -> None:
    grey = images(n=8, channels=1).expand(8, 3, 8, 8)
    torch.manual_seed(4)
    torch.testing.assert_close(ada_augment(grey, 1.0, (op,), 3), grey, rtol=0, atol=1e-5)
    x = images(n=8, channels=3)
    torch.manual_seed(4)
    out = ada_augment(x, 1.0, (op,), 3)
    assert not torch.allclose(out, x)
    # Both act off the grey axis (1, 1, 1) / sqrt(3): the channel mean of every pixel is kept.
    torch.testing.assert_close(out.mean(1), x.mean(1), rtol=0, atol=1e-5)


def test_hue_rotation_by_a_third_of_a_turn_permutes_rgb() -> None:
    # Rodrigues about (1, 1, 1) / sqrt(3) by 2 pi / 3 maps R -> G -> B -> R.
    theta = torch.tensor(2 * math.pi / 3)
    k = 1 / math.sqrt(3)
    cross = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]]) * k
    outer = torch.full((3, 3), k * k)
    rotation = torch.eye(4)
    rotation[:3, :3] = torch.cos(theta) * torch.eye(3) + torch.sin(theta) * cross + (1 - torch.cos(theta)) * outer
    x = images(n=2, channels=3)
    out = apply_color_matrix(x, rotation.expand(2, 4, 4), 3)
    torch.testing.assert_close(out, x[:, [2, 0, 1]], rtol=0, atol=1e-5)


def test_one_channel_takes_the_mean_gain_and_offset_of_rgb() -> None:
    matrix = torch.tensor([[2.0, 0.0, 1.0, 0.3], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, -0.6], [0.0, 0.0, 0.0, 1.0]])
    x = images(n=2, channels=1)
    out = apply_color_matrix(x, matrix.expand(2, 4, 4), 1)
    torch.testing.assert_close(out, x * (4.0 / 3) + (-0.1), rtol=0, atol=1e-6)


def test_a_pair_gets_one_transform_for_both_halves() -> None:
    half = images(n=8, channels=3)
    torch.manual_seed(0)
    out = ada_augment(torch.cat([half, half], dim=1), 1.0, BGC, 3)
    assert torch.equal(out[:, :3], out[:, 3:])
    assert not torch.allclose(out[:, :3], half)


def test_geometric_ops_keep_a_constant_image_constant() -> None:
    # Reflection padding: nothing from outside the image comes in, so a flat image stays flat.
    flat = torch.full((8, 3, 8, 8), 0.25)
    torch.manual_seed(0)
    torch.testing.assert_close(ada_augment(flat, 1.0, ADA_PIPELINES["bg"], 3), flat, rtol=0, atol=1e-6)


def test_cutout_zeroes_one_square_of_half_the_side() -> None:
    x = images(n=32, channels=1, size=8).abs() + 0.1  # no zeros of its own
    torch.manual_seed(0)
    out = diff_augment(x, ("cutout",), 1)
    for o, xi in zip(out, x, strict=True):
        zero = o[0] == 0
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert 0 < len(rows) <= 4 and 0 < len(cols) <= 4  # a square of 4, clipped at the borders
        assert zero.sum() == len(rows) * len(cols)  # one solid rectangle
        assert torch.equal(o[0][~zero], xi[0][~zero])


def test_diffaugment_translation_shifts_in_zeros() -> None:
    x = images(n=16, channels=1, size=8)
    torch.manual_seed(0)
    out = diff_augment(x, ("translation",), 1)
    for o, xi in zip(out, x, strict=True):
        assert any(torch.equal(o, shift(xi[None], torch.tensor([dx]), torch.tensor([dy]), "zeros")[0])
                   for dx in range(-1, 2) for dy in range(-1, 2))
