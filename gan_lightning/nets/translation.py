"""Image-to-image networks of CycleGAN (Zhu et al. 2017): the ResNet generator and the PatchGAN discriminator.

Generator (Johnson et al. 2016, the paper's appendix names the layers): c7s1-64, d128, d256, R256 x n_blocks,
u128, u64, c7s1-3 (Tanh); reflection padding, instance norm, 9 residual blocks at 256 px and 6 at 128 px and below.
Discriminator: the 70x70 PatchGAN, C64-C128-C256-C512 (4x4 convolutions, stride 2 but the last, LeakyReLU 0.2, no
norm on the first), then a 4x4 convolution to one score per overlapping 70x70 patch.

Pix2pix's generator (Isola et al. 2017): the U-Net, encoder C64-C128-C256-C512-C512-C512-C512-C512 and decoder
CD512-CD512-CD512-C512-C256-C128-C64 at 256 px, each decoder layer's output concatenated with its mirror encoder
layer's (skip connections), so low-level structure shared by input and output (edges, layout) bypasses the bottleneck.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":  # the paper's choice: per-image statistics, no affine parameters
        return nn.InstanceNorm2d(channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; accepted: instance, batch, none")


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(norm, channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(norm, channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Image (C_in, H, W) -> image (C_out, H, W) in [-1, 1]; H and W divisible by 4."""

    def __init__(self, in_channels: int, out_channels: int, width: int = 64, n_blocks: int = 9,
                 norm: str = "instance") -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7), _norm(norm, width),
                                   nn.ReLU(True)]
        for scale in (1, 2):  # d128, d256
            layers += [nn.Conv2d(width * scale, width * scale * 2, 3, stride=2, padding=1),
                       _norm(norm, width * scale * 2), nn.ReLU(True)]
        layers += [ResidualBlock(width * 4, norm) for _ in range(n_blocks)]
        for scale in (4, 2):  # u128, u64
            layers += [nn.ConvTranspose2d(width * scale, width * scale // 2, 3, stride=2, padding=1,
                                          output_padding=1), _norm(norm, width * scale // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"the ResNet generator needs sides divisible by 4, got {tuple(x.shape[-2:])}")
        return self.net(x)


def unet_depth(size: int) -> int:
    """Levels of a U-Net for square images of side ``size``: log2(size), each level halving the side down to 1 x 1
    (8 at 256 px as in the paper, 5 at 32 px)."""
    if size < 4 or size & (size - 1):
        raise ValueError(f"the U-Net generator needs an image side that is a power of two >= 4 (it halves the side "
                         f"down to 1 x 1), got {size}")
    return int(math.log2(size))


class UnetGenerator(nn.Module):
    """Image (C_in, size, size) -> image (C_out, size, size) in [-1, 1], size a power of two.

    Encoder level i: 4x4 stride-2 convolution to width * min(2^i, 8) channels, LeakyReLU(0.2) before it (but on the
    input), norm after it except on the first level and the innermost (a 1 x 1 map: batch statistics of one image
    there would zero it). Decoder layer j (innermost first): ReLU, 4x4 stride-2 transposed convolution to the channels
    of the mirror encoder level, norm, dropout 0.5 on the first three (the paper's only noise source: G takes no z),
    then concatenation with that level's activations. Output: ReLU, transposed convolution, Tanh.
    (The reference code puts the dropout one layer deeper, on decoder layers 2-4; this follows the paper's text.)
    """

    def __init__(self, in_channels: int, out_channels: int, size: int, width: int = 64, norm: str = "batch",
                 dropout: float = 0.5) -> None:
        super().__init__()
        depth = unet_depth(size)
        channels = [width * min(2**level, 8) for level in range(depth)]
        self.encoder = nn.ModuleList()
        previous = in_channels
        for level, out in enumerate(channels):
            # Not in place: the LeakyReLU's input is the previous level's activation, kept for the skip connection.
            layers = [nn.LeakyReLU(0.2)] if level > 0 else []
            layers.append(nn.Conv2d(previous, out, 4, stride=2, padding=1))
            if 0 < level < depth - 1:
                layers.append(_norm(norm, out))
            self.encoder.append(nn.Sequential(*layers))
            previous = out
        self.decoder = nn.ModuleList()
        for layer in range(depth - 1):
            out = channels[depth - 2 - layer]
            layers = [nn.ReLU(True), nn.ConvTranspose2d(previous, out, 4, stride=2, padding=1), _norm(norm, out)]
            if layer < 3:
                layers.append(nn.Dropout(dropout))
            self.decoder.append(nn.Sequential(*layers))
            previous = 2 * out  # its output and the skip
        self.output = nn.Sequential(nn.ReLU(True), nn.ConvTranspose2d(previous, out_channels, 4, stride=2, padding=1),
                                    nn.Tanh())
        self.size = size

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (self.size, self.size):
            raise ValueError(f"this U-Net takes {self.size} x {self.size} images, got {tuple(x.shape[-2:])}")
        skips = []
        for level in self.encoder:
            x = level(x)
            skips.append(x)
        skips.pop()  # the innermost activation feeds the decoder directly
        for layer in self.decoder:
            x = torch.cat([layer(x), skips.pop()], dim=1)
        return self.output(x)


class PatchDiscriminator(nn.Module):
    """Image (C, H, W) -> a map of real/fake scores, one per receptive-field patch (70x70 with n_layers=3)."""

    def __init__(self, in_channels: int, width: int = 64, n_layers: int = 3, norm: str = "instance") -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        channels = width
        for layer in range(1, n_layers + 1):
            out = width * min(2**layer, 8)
            stride = 2 if layer < n_layers else 1
            layers += [nn.Conv2d(channels, out, 4, stride=stride, padding=1), _norm(norm, out),
                       nn.LeakyReLU(0.2, True)]
            channels = out
        layers += [nn.Conv2d(channels, 1, 4, stride=1, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def check_patch_input(size: int, n_layers: int) -> None:
    """Raise ValueError unless a PatchDiscriminator with ``n_layers`` can judge ``size`` x ``size`` images: each 4x4
    convolution (padding 1) needs an input of at least 2 pixels, so the score map must keep at least one pixel."""
    if _patch_side(size, n_layers) < 1:
        smallest = next(s for s in range(2, 2**n_layers * 8) if _patch_side(s, n_layers) >= 1)
        raise ValueError(f"a PatchGAN with model.d_layers={n_layers} needs images of at least {smallest} px, got "
                         f"{size} (raise data.crop_size or lower model.d_layers)")


def _patch_side(size: int, n_layers: int) -> int:
    """The side of a PatchDiscriminator's score map for ``size`` x ``size`` inputs (< 1: too small to judge)."""
    side = size
    for stride in [2] * n_layers + [1, 1]:  # the stride-2 layers, then the last stride-1 layer and the output conv
        side = (side - 2) // stride + 1
    return side


def patch_receptive_field(n_layers: int = 3) -> int:
    """The side of the input patch each output score sees: 70 for the default 3 layers (the "70x70 PatchGAN")."""
    field = 1
    for _ in range(2):  # the final 4x4 stride-1 convolution and the last stride-1 layer
        field += 3
    for _ in range(n_layers):  # the stride-2 layers, outermost last: field = (field - 1) * 2 + 4
        field = (field - 1) * 2 + 4
    return field


def translation_init_(module: nn.Module) -> None:
    """N(0, 0.02) weights and zero biases for convolutions, as in the CycleGAN code."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
