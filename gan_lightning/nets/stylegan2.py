"""StyleGAN2 networks (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"), pure PyTorch.

Written after the configuration F of the paper as stylegan2-ada-pytorch lays it out (``training/networks.py``):

- equalised learning rate: weights are stored as N(0, 1) (N(0, 1/lr_multiplier^2) with a learning-rate multiplier)
  and scaled at run time by lr_multiplier / sqrt(fan_in), so Adam's per-parameter step is the same for every layer;
- mapping network: z normalised to unit second moment (a class embedding, normalised too, concatenated for conditional
  models) -> ``mapping_layers`` fully connected layers (lr multiplier 0.01) -> w; ``w_avg`` tracks w (EMA, 0.995)
  during training forwards and is the centre of the truncation trick;
- synthesis network: a learned constant 4x4 input, per resolution two modulated/demodulated 3x3 convolutions (one at
  4x4) with a noise input each (learned strength, initialised to 0), and a skip architecture of toRGB layers
  (modulated 1x1, no demodulation) whose sum is upsampled to the next resolution; the output is linear (no tanh);
- upsampling (G) is bilinear (align_corners=False), which is the reference's [1, 3, 3, 1] FIR upsampling up to the
  border handling; downsampling (D) is the [1, 3, 3, 1] blur followed by a stride-2 subsample, as in the reference;
- discriminator: residual blocks (two 3x3 convolutions, the second after the 2x downsample, plus a 1x1 skip, summed
  with gain sqrt(1/2)), then minibatch standard deviation (groups of 4), a 3x3 conv, two fully connected layers and a
  score per sample; conditional models project the output features on a label embedding (Miyato & Koyama 2018).

Activations are leaky ReLU(0.2) times sqrt(2) (variance-preserving). Channels at resolution r are
``min(channel_base // r, channel_max)``. No custom CUDA kernels: everything runs on the CPU as well.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LRELU_GAIN = math.sqrt(2.0)
DEMOD_EPS = 1e-8
W_AVG_BETA = 0.995  # the reference's w_avg_beta: w_avg <- w_avg + (1 - beta) * (mean w - w_avg) per training forward


def lrelu(x: Tensor) -> Tensor:
    """Leaky ReLU(0.2) scaled by sqrt(2), the reference's variance-preserving "lrelu" activation."""
    return F.leaky_relu(x, 0.2) * LRELU_GAIN


def normalize_2nd_moment(x: Tensor, eps: float = 1e-8) -> Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def label_features(labels: Tensor, num_classes: int) -> Tensor:
    """Class indices -> one-hot rows; multi-hot attribute vectors (floats, N x K) pass as they are."""
    return labels.float() if labels.is_floating_point() else F.one_hot(labels.long(), num_classes).float()


def _blur_kernel(channels: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], device=device, dtype=dtype)
    k = torch.outer(k, k)
    return (k / k.sum()).expand(channels, 1, 4, 4)


def downsample2d(x: Tensor) -> Tensor:
    """2x downsampling: the [1, 3, 3, 1] low-pass filter, then every second pixel (H, W even)."""
    return F.conv2d(x, _blur_kernel(x.shape[1], x.device, x.dtype), stride=2, padding=1, groups=x.shape[1])


def upsample2d(x: Tensor) -> Tensor:
    """2x bilinear upsampling (the [1, 3, 3, 1] FIR upsampler of the reference, edges replicated)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate: weight ~ N(0, 1/lr_multiplier^2) stored, times
    ``weight_gain = lr_multiplier / sqrt(in_features)`` at run time; bias stored / lr_multiplier, used times
    lr_multiplier."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bias_init: float = 0.0,
                 lr_multiplier: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_multiplier)) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias * self.bias_gain if self.bias is not None else None
        x = F.linear(x, self.weight * self.weight_gain, bias)
        return lrelu(x) if self.activation else x


class EqualConv2d(nn.Module):
    """Convolution with equalised learning rate (runtime scale 1/sqrt(in_channels * k * k)), 'same' padding, optional
    2x downsampling before it (blur + subsample), optional lrelu, and an output gain (sqrt(1/2) in residual blocks)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: bool = True, down: bool = False, gain: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding, self.activation, self.down, self.gain = kernel_size // 2, activation, down, gain

    def forward(self, x: Tensor) -> Tensor:
        if self.down:
            x = downsample2d(x)
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.padding)
        if self.activation:
            x = lrelu(x)
        return x * self.gain if self.gain != 1.0 else x


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool = True, fused: bool = True) -> Tensor:
    """Per-sample convolution with ``weight`` (O x I x k x k) scaled by ``styles`` (N x I) along its input channels
    and, with ``demodulate``, each output filter renormalised to unit L2 norm (eps 1e-8): for inputs of unit variance
    the outputs keep unit variance.

    ``fused``: one grouped convolution (groups = N) with per-sample weights. Not fused: the same result as the input
    scaled by the styles, one shared convolution, the output scaled by the demodulation coefficients; the reference
    trains this way (it is about 2x faster on a CPU for small nets, measured) and samples fused."""
    n, in_channels, height, width = x.shape
    out_channels, _, kh, kw = weight.shape
    if not fused:
        x = F.conv2d(x * styles.reshape(n, in_channels, 1, 1), weight, padding=kh // 2)
        if demodulate:
            coefs = (weight.square().sum(dim=(2, 3)) @ styles.square().T + DEMOD_EPS).rsqrt()  # O x N
            x = x * coefs.T.reshape(n, out_channels, 1, 1)
        return x
    w = weight.unsqueeze(0) * styles.reshape(n, 1, in_channels, 1, 1)  # N x O x I x k x k
    if demodulate:
        w = w * (w.square().sum(dim=(2, 3, 4), keepdim=True) + DEMOD_EPS).rsqrt()
    x = F.conv2d(x.reshape(1, n * in_channels, height, width), w.reshape(n * out_channels, in_channels, kh, kw),
                 padding=kh // 2, groups=n)
    return x.reshape(n, out_channels, *x.shape[2:])


class ModulatedConv(nn.Module):
    """A synthesis layer: (optional 2x upsampling) -> modulated/demodulated 3x3 conv -> noise -> bias -> lrelu."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool = False):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)  # styles start at 1: plain convolutions
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros(()))  # 0: noise has no effect at init
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.up, self.resolution = up, resolution

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "random") -> Tensor:
        if self.up:
            x = upsample2d(x)
        x = modulated_conv2d(x, self.weight, self.affine(w), fused=not self.training)
        if noise_mode == "random":
            x = x + torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device,
                                dtype=x.dtype) * self.noise_strength
        elif noise_mode == "const":
            x = x + self.noise_const.to(x.dtype) * self.noise_strength
        elif noise_mode != "none":
            raise ValueError(f"noise_mode {noise_mode!r}; accepted: random, const, none")
        return lrelu(x + self.bias.reshape(1, -1, 1, 1))


class ToRGB(nn.Module):
    """Modulated 1x1 convolution to image channels: no demodulation, linear output."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w) * self.weight_gain, demodulate=False,
                             fused=not self.training)
        return x + self.bias.reshape(1, -1, 1, 1)


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    return max(1, min(channel_base // resolution, channel_max))


def resolution_log2(image_size: int) -> int:
    log2 = int(math.log2(image_size)) if image_size >= 4 else 0
    if image_size < 8 or 2**log2 != image_size:
        raise ValueError(f"StyleGAN2 nets need a power-of-two image size >= 8 (4x4 * 2^k), got {image_size}")
    return log2


class MappingNetwork(nn.Module):
    """z (and labels) -> w, tracking ``w_avg``."""

    def __init__(self, z_dim: int, w_dim: int, num_layers: int, num_classes: int | None = None,
                 lr_multiplier: float = 0.01):
        super().__init__()
        self.num_classes = num_classes
        self.embed = EqualLinear(num_classes, w_dim) if num_classes else None
        dims = [z_dim + (w_dim if num_classes else 0)] + [w_dim] * num_layers
        self.layers = nn.Sequential(*(EqualLinear(a, b, lr_multiplier=lr_multiplier, activation=True)
                                      for a, b in zip(dims[:-1], dims[1:], strict=True)))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor, labels: Tensor | None = None, update_w_avg: bool = False) -> Tensor:
        x = normalize_2nd_moment(z)
        if self.embed is not None:
            if labels is None:
                raise ValueError("this network is conditional: pass class labels")
            x = torch.cat([x, normalize_2nd_moment(self.embed(label_features(labels, self.num_classes)))], dim=1)
        w = self.layers(x)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().mean(0).lerp(self.w_avg, W_AVG_BETA))
        return w


class SynthesisNetwork(nn.Module):
    """ws (N x num_ws x w_dim) -> images; layer i of the convolutions reads ws[:, i], toRGB of a block reads the w of
    the next block's first convolution (the last one reads ws[:, -1]), as in the reference."""

    def __init__(self, w_dim: int, image_size: int, channels: int, channel_base: int, channel_max: int):
        super().__init__()
        log2 = resolution_log2(image_size)
        width = [channels_at(2**k, channel_base, channel_max) for k in range(2, log2 + 1)]
        self.const = nn.Parameter(torch.randn(width[0], 4, 4))
        self.convs = nn.ModuleList([ModulatedConv(width[0], width[0], w_dim, 4)])
        self.torgbs = nn.ModuleList([ToRGB(width[0], channels, w_dim)])
        for index in range(1, len(width)):
            res = 4 * 2**index
            self.convs.append(ModulatedConv(width[index - 1], width[index], w_dim, res, up=True))
            self.convs.append(ModulatedConv(width[index], width[index], w_dim, res))
            self.torgbs.append(ToRGB(width[index], channels, w_dim))
        self.num_ws = len(self.convs) + 1

    def forward(self, ws: Tensor, noise_mode: str = "random") -> Tensor:
        x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        x = self.convs[0](x, ws[:, 0], noise_mode)
        image = self.torgbs[0](x, ws[:, 1])
        for block in range(1, len(self.torgbs)):
            first = 2 * block - 1
            x = self.convs[first](x, ws[:, first], noise_mode)
            x = self.convs[first + 1](x, ws[:, first + 1], noise_mode)
            image = upsample2d(image) + self.torgbs[block](x, ws[:, first + 2])
        return image


class StyleGAN2Generator(nn.Module):
    """``G(z[, labels], truncation_psi=1.0, noise_mode="random")`` -> N x C x H x W images (linear output, roughly in
    [-1, 1]). In training mode a forward moves ``mapping.w_avg`` toward the batch mean of w and, with probability
    ``style_mixing``, takes the layers from a random cut-off on from a second z's w."""

    def __init__(self, z_dim: int, w_dim: int, image_size: int, channels: int, channel_base: int = 32768,
                 channel_max: int = 512, mapping_layers: int = 8, num_classes: int | None = None,
                 style_mixing: float = 0.9, mapping_lr_multiplier: float = 0.01):
        super().__init__()
        self.z_dim, self.style_mixing = z_dim, style_mixing
        self.synthesis = SynthesisNetwork(w_dim, image_size, channels, channel_base, channel_max)
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, num_classes, mapping_lr_multiplier)
        self.num_ws = self.synthesis.num_ws

    @property
    def w_avg(self) -> Tensor:
        return self.mapping.w_avg

    def training_ws(self, z: Tensor, labels: Tensor | None = None, update_w_avg: bool = False) -> Tensor:
        """Per-layer ws as training uses them: w broadcast to every layer, style mixing with probability
        ``style_mixing`` (one cut-off per batch, uniform in [1, num_ws), as the reference)."""
        ws = self.mapping(z, labels, update_w_avg).unsqueeze(1).repeat(1, self.num_ws, 1)
        if self.style_mixing > 0:
            cutoff = int(torch.randint(1, self.num_ws, ()))
            if float(torch.rand(())) < self.style_mixing:
                mixed = self.mapping(torch.randn_like(z), labels).unsqueeze(1)
                ws = torch.cat([ws[:, :cutoff], mixed.expand(-1, self.num_ws - cutoff, -1)], dim=1)
        return ws

    def sampling_ws(self, z: Tensor, labels: Tensor | None = None, truncation_psi: float = 1.0,
                    truncation_cutoff: int | None = None) -> Tensor:
        """Per-layer ws (N x num_ws x w_dim) as sampling uses them: w broadcast to every layer (no style mixing, no
        w_avg update), truncated toward w_avg."""
        ws = self.mapping(z, labels).unsqueeze(1).repeat(1, self.num_ws, 1)
        return truncate(ws, self.w_avg, truncation_psi, truncation_cutoff)

    def forward(self, z: Tensor, labels: Tensor | None = None, truncation_psi: float = 1.0,
                noise_mode: str = "random", truncation_cutoff: int | None = None) -> Tensor:
        if self.training:
            ws = truncate(self.training_ws(z, labels, update_w_avg=True), self.w_avg, truncation_psi,
                          truncation_cutoff)
        else:
            ws = self.sampling_ws(z, labels, truncation_psi, truncation_cutoff)
        return self.synthesis(ws, noise_mode)


def truncate(ws: Tensor, w_avg: Tensor, psi: float, cutoff: int | None = None) -> Tensor:
    """The truncation trick: w' = w_avg + psi * (w - w_avg) on the first ``cutoff`` layers of ``ws`` (N x num_ws x
    w_dim; all layers when None), the others untouched, as the reference's ``truncation_cutoff``."""
    if psi == 1.0:
        return ws
    if cutoff is None or cutoff >= ws.shape[1]:
        return w_avg.lerp(ws, psi)
    return torch.cat([w_avg.lerp(ws[:, :cutoff], psi), ws[:, cutoff:]], dim=1)


def minibatch_stddev(x: Tensor, group_size: int = 4, num_channels: int = 1) -> Tensor:
    """Append ``num_channels`` channels: the standard deviation of each feature over a group of samples, averaged over
    pixels and over the features of one of ``num_channels`` equal slices of the channels, the same for every sample of
    a group (Karras et al. 2018; the reference's ``mbstd_num_channels``, 1 by default). The group is clamped to the
    batch (and lowered until it divides the batch); sample i belongs to group i mod (N / group), as in the
    reference."""
    n, c, h, w = x.shape
    if c % num_channels:
        raise ValueError(f"minibatch std: {c} channels do not split into {num_channels} equal slices")
    group = min(group_size, n)
    while n % group:
        group -= 1
    y = x.float().reshape(group, -1, num_channels, c // num_channels, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # n/G x F x C/F x H x W: std over each group
    y = y.mean(dim=(2, 3, 4)).to(x.dtype)  # n/G x F
    y = y.reshape(-1, num_channels, 1, 1).repeat(group, 1, h, w)
    return torch.cat([x, y], dim=1)


class DiscriminatorBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, down=True, gain=math.sqrt(0.5))
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, activation=False, down=True,
                                gain=math.sqrt(0.5))

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.conv1(self.conv0(x))


class StyleGAN2Discriminator(nn.Module):
    """Residual D: fromRGB -> blocks down to 4x4 -> minibatch std -> conv -> fc -> score (N,); with ``num_classes``
    the score is the projection <out(x), embed(y)> / sqrt(dim)."""

    def __init__(self, channels: int, image_size: int, channel_base: int = 32768, channel_max: int = 512,
                 num_classes: int | None = None, mbstd_group: int = 4, mbstd_channels: int = 1):
        super().__init__()
        log2 = resolution_log2(image_size)
        width = {2**k: channels_at(2**k, channel_base, channel_max) for k in range(2, log2 + 1)}
        self.from_rgb = EqualConv2d(channels, width[image_size], 1)
        self.blocks = nn.Sequential(*(DiscriminatorBlock(width[2**k], width[2 ** (k - 1)])
                                      for k in range(log2, 2, -1)))
        top = width[4]
        self.mbstd_group, self.mbstd_channels = mbstd_group, mbstd_channels
        self.conv = EqualConv2d(top + mbstd_channels, top, 3)
        self.fc = EqualLinear(top * 16, top, activation=True)
        self.num_classes = num_classes
        self.cmap_dim = top if num_classes else 1
        self.out = EqualLinear(top, self.cmap_dim)
        self.embed = EqualLinear(num_classes, self.cmap_dim) if num_classes else None

    def features(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """The last hidden layer (N x channels), before the output layer."""
        x = self.blocks(self.from_rgb(x))
        x = self.conv(minibatch_stddev(x, self.mbstd_group, self.mbstd_channels))
        return self.fc(x.flatten(1))

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        out = self.out(self.features(x))
        if self.embed is None:
            return out.flatten()
        if labels is None:
            raise ValueError("this network is conditional: pass class labels")
        cmap = self.embed(label_features(labels, self.num_classes))
        return (out * cmap).sum(dim=1) / math.sqrt(self.cmap_dim)
