"""Differentiable augmentations of what a discriminator sees: ADA's pipeline (Karras et al. 2020) and DiffAugment
(Zhao et al. 2020). Pure PyTorch ops (gather, grid_sample, batched matrix products), so gradients reach G through
them on any device, and R1/gradient penalties can take gradients at augmented inputs.

Images are N x (K*C) x H x W in [-1, 1]: K images of C channels side by side along dim 1 (a pix2pix (input, output)
pair: K = 2) get the same transform; samples along dim 0 get independent ones. Random draws come from torch's global
generator on the images' device, so a seeded (or resumed) run repeats them.

ADA (stylegan2-ada-pytorch's ``AugmentPipe`` is the reference; this is a re-derivation with its constants): each
transform of the pipeline is applied to each sample independently with probability ``p``, in this order:

- blit: x-flip, a 90-degree rotation (k uniform in 0..3), an integer translation (uniform in +-0.125 of the image
  size, rounded to pixels). Done with exact index ops (flip, rot90, gather), so a flipped image is bit-exact.
- geom: isotropic scale (2^N(0, 0.2)), arbitrary rotation (uniform angle; applied before and after the anisotropic
  scale, each with probability 1 - sqrt(1 - p) so that P(rotated) = p), anisotropic scale (2^N(0, 0.2) on x, its
  inverse on y), fractional translation (N(0, 0.125) of the size). Composed into one affine matrix per sample and
  applied with one bilinear ``grid_sample`` with reflection padding. Unlike the reference there is no 2x
  up/down-sampling with a wavelet filter around the resampling (less anti-aliasing, no custom kernels either).
- color: brightness (+N(0, 0.2)), contrast (x 2^N(0, 0.5)), luma flip (Householder reflection about the luma axis),
  hue rotation (uniform angle about the luma axis), saturation (x 2^N(0, 1) off the luma axis), composed into one
  4x4 matrix on homogeneous RGB. On 1-channel images hue and saturation do not exist; the matrix acts as its mean
  gain and offset over R, G and B: brightness, contrast and luma flip (= x -> -x, a negative) apply.

Samples whose draws select no transform of a group are passed through untouched (``torch.where``), so p = 0 is the
identity exactly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

BLIT = ("xflip", "rotate90", "xint")
GEOM = ("scale", "rotate", "aniso", "xfrac")
COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
ADA_PIPELINES = {"blit": BLIT, "geom": GEOM, "color": COLOR, "bg": BLIT + GEOM, "bgc": BLIT + GEOM + COLOR}
DIFFAUGMENT_OPS = ("color", "translation", "cutout")

# The reference's ranges (stylegan2-ada-pytorch AugmentPipe defaults).
XINT_MAX = 0.125
SCALE_STD = 0.2
ANISO_STD = 0.2
XFRAC_STD = 0.125
BRIGHTNESS_STD = 0.2
CONTRAST_STD = 0.5
SATURATION_STD = 1.0
# DiffAugment's (Zhao et al. 2020, DiffAugment_pytorch.py).
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def _per_sample(mask: Tensor) -> Tensor:
    return mask.reshape(-1, 1, 1, 1)


def _chosen(shape: tuple[int, ...], p: Tensor | float, device: torch.device) -> Tensor:
    """One Bernoulli(p) draw per sample: whether a transform applies to it."""
    return torch.rand(shape, device=device) < p


def _reflect(index: Tensor, size: int) -> Tensor:
    """Indices mirrored into [0, size) about the borders (edge pixel repeated: grid_sample's reflection)."""
    index = index.remainder(2 * size)
    return torch.where(index >= size, 2 * size - 1 - index, index)


def shift(images: Tensor, dx: Tensor, dy: Tensor, padding: str = "reflect") -> Tensor:
    """Each sample moved by whole pixels (dx right, dy down; long tensors of N): what comes in from outside is the
    image mirrored (``reflect``) or zeros (``zeros``)."""
    n, c, h, w = images.shape
    cols = torch.arange(w, device=images.device) - dx[:, None]  # output column j reads input column j - dx
    rows = torch.arange(h, device=images.device) - dy[:, None]
    if padding == "reflect":
        valid = None
        cols, rows = _reflect(cols, w), _reflect(rows, h)
    else:
        valid = ((rows >= 0) & (rows < h))[:, None, :, None] & ((cols >= 0) & (cols < w))[:, None, None, :]
        cols, rows = cols.clamp(0, w - 1), rows.clamp(0, h - 1)
    out = images.gather(3, cols[:, None, None, :].expand(n, c, h, w))
    out = out.gather(2, rows[:, None, :, None].expand(n, c, h, w))
    return out if valid is None else out * valid


def _matrix(n: int, rows: list[list[Tensor | float]], device: torch.device) -> Tensor:
    """N x R x R matrices from rows of per-sample tensors (N,) and constants."""
    entries = [torch.as_tensor(e, dtype=torch.float32, device=device).expand(n) for row in rows for e in row]
    size = len(rows)
    return torch.stack(entries, dim=1).reshape(n, size, size)


def _blit(images: Tensor, p: Tensor | float, ops: tuple[str, ...]) -> Tensor:
    n, device = images.shape[0], images.device
    if "xflip" in ops:
        flip = (torch.rand(n, device=device) < 0.5) & _chosen((n,), p, device)
        images = torch.where(_per_sample(flip), images.flip(3), images)
    if "rotate90" in ops:
        turns = torch.randint(0, 4, (n,), device=device) * _chosen((n,), p, device)
        rotations = torch.stack([torch.rot90(images, k, dims=(2, 3)) for k in range(4)])
        images = rotations[turns, torch.arange(n, device=device)]
    if "xint" in ops:
        size = torch.tensor([images.shape[3], images.shape[2]], device=device)
        offset = (torch.rand(n, 2, device=device) * 2 - 1) * XINT_MAX * _chosen((n, 1), p, device)
        pixels = torch.round(offset * size).long()
        images = shift(images, pixels[:, 0], pixels[:, 1])
    return images


def _geometric_matrix(n: int, width: int, height: int, p: Tensor | float, ops: tuple[str, ...],
                      device: torch.device) -> Tensor:
    """N x 3 x 3 inverse transforms (output pixel -> input pixel, in pixels about the image centre)."""
    one, zero = torch.ones(n, device=device), torch.zeros(n, device=device)
    inverse = torch.eye(3, device=device).expand(n, 3, 3)

    def scale_inv(sx: Tensor, sy: Tensor) -> Tensor:
        return _matrix(n, [[1 / sx, 0.0, 0.0], [0.0, 1 / sy, 0.0], [0.0, 0.0, 1.0]], device)

    def rotate_inv(theta: Tensor) -> Tensor:
        cos, sin = torch.cos(theta), torch.sin(theta)
        return _matrix(n, [[cos, sin, 0.0], [-sin, cos, 0.0], [0.0, 0.0, 1.0]], device)

    # Two chances to rotate (before and after the anisotropic scale), each with this probability: P(either) = p.
    p_rotate = 1 - torch.sqrt(torch.clamp(1 - torch.as_tensor(p, device=device), 0, 1))

    def rotation() -> Tensor:
        theta = (torch.rand(n, device=device) * 2 - 1) * math.pi
        return torch.where(_chosen((n,), p_rotate, device), theta, zero)

    if "scale" in ops:
        s = torch.where(_chosen((n,), p, device), torch.exp2(torch.randn(n, device=device) * SCALE_STD), one)
        inverse = inverse @ scale_inv(s, s)
    if "rotate" in ops:
        inverse = inverse @ rotate_inv(rotation())
    if "aniso" in ops:
        s = torch.where(_chosen((n,), p, device), torch.exp2(torch.randn(n, device=device) * ANISO_STD), one)
        inverse = inverse @ scale_inv(s, 1 / s)
    if "rotate" in ops:
        inverse = inverse @ rotate_inv(rotation())
    if "xfrac" in ops:
        t = torch.randn(n, 2, device=device) * XFRAC_STD * _chosen((n, 1), p, device)
        inverse = inverse @ _matrix(n, [[1.0, 0.0, -t[:, 0] * width], [0.0, 1.0, -t[:, 1] * height],
                                        [0.0, 0.0, 1.0]], device)
    return inverse


def _geometric(images: Tensor, p: Tensor | float, ops: tuple[str, ...]) -> Tensor:
    n, _, h, w = images.shape
    inverse = _geometric_matrix(n, w, h, p, ops, images.device)
    # Pixels about the centre -> grid_sample's [-1, 1] coordinates (align_corners=False: +-1 are the outer edges).
    to_unit = torch.diag(torch.tensor([2 / w, 2 / h, 1.0], device=images.device))
    from_unit = torch.diag(torch.tensor([w / 2, h / 2, 1.0], device=images.device))
    theta = (to_unit @ inverse @ from_unit)[:, :2, :]
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    moved = (inverse != torch.eye(3, device=images.device)).flatten(1).any(1)
    return torch.where(_per_sample(moved), warped, images)


def _color_matrix(n: int, channels: int, p: Tensor | float, ops: tuple[str, ...], device: torch.device) -> Tensor:
    """N x 4 x 4 matrices acting on homogeneous RGB (the offset in the last column)."""
    one, zero = torch.ones(n, device=device), torch.zeros(n, device=device)
    eye = torch.eye(4, device=device)
    luma = torch.tensor([1.0, 1.0, 1.0, 0.0], device=device) / math.sqrt(3)  # the grey axis
    luma_outer = torch.outer(luma, luma)
    matrix = eye.expand(n, 4, 4)
    if "brightness" in ops:
        b = torch.where(_chosen((n,), p, device), torch.randn(n, device=device) * BRIGHTNESS_STD, zero)
        matrix = _matrix(n, [[1.0, 0.0, 0.0, b], [0.0, 1.0, 0.0, b], [0.0, 0.0, 1.0, b], [0.0, 0.0, 0.0, 1.0]],
                         device) @ matrix
    if "contrast" in ops:
        c = torch.where(_chosen((n,), p, device), torch.exp2(torch.randn(n, device=device) * CONTRAST_STD), one)
        matrix = _matrix(n, [[c, 0.0, 0.0, 0.0], [0.0, c, 0.0, 0.0], [0.0, 0.0, c, 0.0], [0.0, 0.0, 0.0, 1.0]],
                         device) @ matrix
    if "lumaflip" in ops:
        flip = ((torch.rand(n, device=device) < 0.5) & _chosen((n,), p, device)).float()
        matrix = (eye - 2 * luma_outer * flip[:, None, None]) @ matrix
    if "hue" in ops and channels == 3:
        theta = torch.where(_chosen((n,), p, device), (torch.rand(n, device=device) * 2 - 1) * math.pi, zero)
        cos, sin = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
        cross = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]], device=device) / math.sqrt(3)
        rotation = eye.repeat(n, 1, 1)  # Rodrigues: rotation by theta about the luma axis
        rotation[:, :3, :3] = cos * torch.eye(3, device=device) + sin * cross + (1 - cos) * luma_outer[:3, :3]
        matrix = rotation @ matrix
    if "saturation" in ops and channels == 3:
        s = torch.where(_chosen((n,), p, device), torch.exp2(torch.randn(n, device=device) * SATURATION_STD), one)
        off_axis = (eye - luma_outer)[:3, :3] * s[:, None, None]
        saturation = eye.repeat(n, 1, 1)
        saturation[:, :3, :3] = luma_outer[:3, :3] + off_axis
        matrix = saturation @ matrix
    return matrix


def apply_color_matrix(images: Tensor, matrix: Tensor, channels: int) -> Tensor:
    """``images`` (N x K*C x H x W, C = 1 or 3) through per-sample 4x4 colour matrices. One channel: the mean gain
    and offset of the R, G and B rows (a grey image is R = G = B)."""
    n, total, h, w = images.shape
    grouped = images.reshape(n, total // channels, channels, h * w)
    if channels == 3:
        out = torch.einsum("nij,nkjp->nkip", matrix[:, :3, :3], grouped) + matrix[:, None, :3, 3:]
    else:
        gain = matrix[:, :3, :3].sum((1, 2)) / 3
        offset = matrix[:, :3, 3].mean(1)
        out = grouped * gain[:, None, None, None] + offset[:, None, None, None]
    return out.reshape(n, total, h, w)


def ada_augment(images: Tensor, p: Tensor | float, ops: tuple[str, ...], channels: int) -> Tensor:
    """ADA's pipeline: each transform in ``ops`` applied per sample with probability ``p`` (a float, or a 0-dim
    tensor on the images' device: no host read). ``channels``: channels of one image (1 or 3 for colour ops)."""
    if any(op in BLIT for op in ops):
        images = _blit(images, p, ops)
    if any(op in GEOM for op in ops):
        images = _geometric(images, p, ops)
    if any(op in COLOR for op in ops):
        n = images.shape[0]
        matrix = _color_matrix(n, channels, p, ops, images.device)
        changed = (matrix != torch.eye(4, device=images.device)).flatten(1).any(1)
        images = torch.where(_per_sample(changed), apply_color_matrix(images, matrix.to(images.dtype), channels),
                             images)
    return images


def diff_augment(images: Tensor, policy: tuple[str, ...], channels: int) -> Tensor:
    """DiffAugment: every op of ``policy`` on every sample (no probability), with Zhao et al.'s ranges: colour =
    brightness + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5); translation by whole pixels up to 1/8
    of the size with zero padding; cutout of a square half the size at a random centre (zeros)."""
    n, total, h, w = images.shape
    device = images.device
    if "color" in policy:
        grouped = images.reshape(n, total // channels, channels, h, w)
        grouped = grouped + (torch.rand(n, 1, 1, 1, 1, device=device, dtype=images.dtype) - 0.5)
        mean = grouped.mean(dim=2, keepdim=True)  # saturation: about the per-pixel channel mean
        grouped = (grouped - mean) * (torch.rand(n, 1, 1, 1, 1, device=device, dtype=images.dtype) * 2) + mean
        mean = grouped.mean(dim=(2, 3, 4), keepdim=True)  # contrast: about the image mean
        grouped = (grouped - mean) * (torch.rand(n, 1, 1, 1, 1, device=device, dtype=images.dtype) + 0.5) + mean
        images = grouped.reshape(n, total, h, w)
    if "translation" in policy:
        sx, sy = int(w * TRANSLATION_RATIO + 0.5), int(h * TRANSLATION_RATIO + 0.5)
        dx = torch.randint(-sx, sx + 1, (n,), device=device)
        dy = torch.randint(-sy, sy + 1, (n,), device=device)
        images = shift(images, dx, dy, padding="zeros")
    if "cutout" in policy:
        cw, ch = int(w * CUTOUT_RATIO + 0.5), int(h * CUTOUT_RATIO + 0.5)
        cx = torch.randint(0, w + (1 - cw % 2), (n, 1), device=device) - cw // 2  # the square's left column
        cy = torch.randint(0, h + (1 - ch % 2), (n, 1), device=device) - ch // 2
        cols, rows = torch.arange(w, device=device), torch.arange(h, device=device)
        inside_x = (cols >= cx) & (cols < cx + cw)  # N x W
        inside_y = (rows >= cy) & (rows < cy + ch)  # N x H
        keep = ~(inside_y[:, :, None] & inside_x[:, None, :])
        images = images * keep[:, None].to(images.dtype)
    return images
