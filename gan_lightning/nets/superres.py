"""Super-resolution networks (plain nn.Modules): SRResNet and the SRGAN discriminator (Ledig et al. 2017), and the
RRDB generator of ESRGAN (Wang et al. 2018).

Every network takes and returns images in [-1, 1] (the framework's data space); widths and depths are options so
tests and CPU recipes run tiny versions of the same architectures. Scales 2, 3 and 4 are supported: SRResNet
upsamples by sub-pixel convolution (conv to r^2 x channels, PixelShuffle(r)), one x2 stage per octave and a single
PixelShuffle(3) for x3; RRDBNet by nearest-neighbour interpolation followed by a conv, the same stages.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SCALES = (2, 3, 4)


def upsampling_stages(scale: int) -> list[int]:
    """The factors of the upsampling stages: one x2 per octave (x2, x4), or one x3."""
    if scale not in SCALES:
        raise ValueError(f"scale {scale} is not supported (2, 3 or 4)")
    return [3] if scale == 3 else [2] * int(math.log2(scale))


# --- SRResNet (Ledig et al. 2017, Figure 4) ---------------------------------------------------------------


class ResidualBlock(nn.Module):
    """conv3x3-BN-PReLU-conv3x3-BN, added to the input."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.PReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """9x9 head + PReLU, ``n_blocks`` residual blocks, conv3x3-BN and the global skip from the head, sub-pixel
    upsampling stages (conv3x3 to r^2 x width, PixelShuffle(r), PReLU), 9x9 tail. PReLU has one slope per layer, as
    in the reference implementations. x4 at the paper's sizes (64 wide, 16 blocks, RGB): 1,549,462 parameters."""

    def __init__(self, channels: int = 3, scale: int = 4, width: int = 64, n_blocks: int = 16) -> None:
        super().__init__()
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, padding=4), nn.PReLU())
        self.blocks = nn.Sequential(*(ResidualBlock(width) for _ in range(n_blocks)))
        self.trunk_end = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width))
        stages = []
        for factor in upsampling_stages(scale):
            stages += [nn.Conv2d(width, width * factor**2, 3, padding=1), nn.PixelShuffle(factor), nn.PReLU()]
        self.upsample = nn.Sequential(*stages)
        self.tail = nn.Conv2d(width, channels, 9, padding=4)

    def forward(self, x: Tensor) -> Tensor:
        head = self.head(x)
        return self.tail(self.upsample(head + self.trunk_end(self.blocks(head))))


# --- The SRGAN discriminator (Ledig et al. 2017, Figure 4) -------------------------------------------------

# Conv widths (in units of ``width``) and strides of the paper's eight convs: 64, 64, 128, 128, 256, 256, 512, 512.
_D_LAYERS = ((1, 1), (1, 2), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2))


def conv_output_size(size: int, stride: int) -> int:
    """Spatial size after a 3x3 conv with padding 1 and ``stride``: ceil(size / stride)."""
    return (size + 2 - 3) // stride + 1


class SRDiscriminator(nn.Module):
    """Eight 3x3 convs (64 -> 512, strides 1, 2, 1, 2, ...), LeakyReLU(0.2), batch norm after every conv but the
    first, then dense(1024), LeakyReLU(0.2), dense(1): one logit per image.

    Crop sizes: the dense layer reads the whole last feature map, so its input size follows the HR crop: 512 x 6 x 6
    at the paper's 96 px, 512 x ceil(s/16)^2 at a crop of s pixels (e.g. 2 x 2 for 28 px digits). A discriminator
    is built for one crop size and refuses another in one line; nothing is pooled away.
    Convs followed by batch norm have no bias (the norm's shift replaces it)."""

    def __init__(self, channels: int = 3, crop_size: int = 96, width: int = 64, dense: int = 1024) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        size, in_channels = crop_size, channels
        for index, (multiple, stride) in enumerate(_D_LAYERS):
            out_channels = width * multiple
            layers.append(nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=index == 0))
            if index > 0:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.LeakyReLU(0.2))
            size, in_channels = conv_output_size(size, stride), out_channels
        self.crop_size = crop_size
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(in_channels * size * size, dense),
                                        nn.LeakyReLU(0.2), nn.Linear(dense, 1))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (self.crop_size, self.crop_size):
            raise ValueError(f"this discriminator was built for {self.crop_size} px crops, got "
                             f"{tuple(x.shape[-2:])}")
        return self.classifier(self.features(x)).flatten()


# --- RRDBNet (Wang et al. 2018, ESRGAN) -------------------------------------------------------------------


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convs, each reading the block input and every earlier output (dense connections, ``growth`` new
    channels each); LeakyReLU(0.2) after all but the last, whose output is scaled by ``residual_scale`` and added to
    the input. No batch norm."""

    def __init__(self, width: int, growth: int, residual_scale: float) -> None:
        super().__init__()
        self.residual_scale = residual_scale
        self.convs = nn.ModuleList(nn.Conv2d(width + i * growth, growth if i < 4 else width, 3, padding=1)
                                   for i in range(5))

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for conv in self.convs[:-1]:
            features.append(F.leaky_relu(conv(torch.cat(features, 1)), 0.2))
        return x + self.residual_scale * self.convs[-1](torch.cat(features, 1))


class RRDB(nn.Module):
    """Three residual dense blocks in a residual of their own (residual-in-residual), scaled the same way."""

    def __init__(self, width: int, growth: int, residual_scale: float) -> None:
        super().__init__()
        self.residual_scale = residual_scale
        self.blocks = nn.Sequential(*(ResidualDenseBlock(width, growth, residual_scale) for _ in range(3)))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.residual_scale * self.blocks(x)


class RRDBNet(nn.Module):
    """ESRGAN's generator: conv3x3 head, ``n_blocks`` RRDBs and a conv3x3 with the global skip, upsampling stages of
    nearest-neighbour interpolation + conv3x3 + LeakyReLU(0.2), then conv3x3 + LeakyReLU and the output conv3x3.
    At the paper's sizes (64 wide, 23 blocks, growth 32, x4, RGB): 16,697,987 parameters.

    Initialisation as the ESRGAN authors found it trains deep RRDB stacks stably: Kaiming-normal weights scaled by
    0.1 inside the dense blocks, zero biases."""

    def __init__(self, channels: int = 3, scale: int = 4, width: int = 64, n_blocks: int = 23, growth: int = 32,
                 residual_scale: float = 0.2) -> None:
        super().__init__()
        self.stages = upsampling_stages(scale)
        self.head = nn.Conv2d(channels, width, 3, padding=1)
        self.blocks = nn.Sequential(*(RRDB(width, growth, residual_scale) for _ in range(n_blocks)))
        self.trunk_end = nn.Conv2d(width, width, 3, padding=1)
        self.upsample_convs = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in self.stages)
        self.hr_conv = nn.Conv2d(width, width, 3, padding=1)
        self.tail = nn.Conv2d(width, channels, 3, padding=1)
        for block in self.blocks.modules():
            if isinstance(block, nn.Conv2d):
                nn.init.kaiming_normal_(block.weight)
                block.weight.data.mul_(0.1)
                nn.init.zeros_(block.bias)

    def forward(self, x: Tensor) -> Tensor:
        head = self.head(x)
        out = head + self.trunk_end(self.blocks(head))
        for factor, conv in zip(self.stages, self.upsample_convs, strict=True):
            out = F.leaky_relu(conv(F.interpolate(out, scale_factor=factor, mode="nearest")), 0.2)
        return self.tail(F.leaky_relu(self.hr_conv(out), 0.2))


GENERATORS = {"srresnet": SRResNet, "rrdb": RRDBNet}
