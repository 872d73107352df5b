"""Differentiable perceptual distances between two image batches: LPIPS (Zhang et al. 2018) and its relatives, for
projection, perceptual path length and super-resolution evaluation.

One recipe, LPIPS's: run both batches through a frozen network, take the activations at a few depths, normalise each
position's channel vector to unit length, square the difference, weight its channels (LPIPS's learned 1 x 1 "lin"
layers; all ones in the paper's "baseline" variant, the sum over channels), and sum over the taps the spatial mean.
Per sample, so a batch of projections or path segments stays independent.

- ``lpips_vgg(vgg_path, lpips_path)``: LPIPS as papers report it (v0.1, net 'vgg', the ``lpips`` package's
  ``LPIPS(net='vgg')``): torchvision's VGG16 ImageNet file (``vgg16-397923af.pth``) and the package's learned
  weights (``weights/v0.1/vgg.pth``), compared at the images' full size (no resize: LPIPS is defined on the image
  as given). Matches the package to 1e-6 (``tests/metrics/test_lpips.py``, ``benchmarks/check_lpips.py``).
- ``vgg16_distance(path, lpips_path=None)``: the same network for projection and PPL, images over 256 px
  area-downsampled to 256 first, as stylegan2-ada's projector and PPL do; with ``lpips_path`` the learned weights
  (stylegan2-ada's projector uses learned LPIPS), else the baseline variant.
- ``mnist_distance()``: the shipped MNIST classifier (``gan_lightning.metrics.mnist``), taps after each of its three
  conv stages and its 128-d feature layer: the offline choice for digits.

Images come in data space ([-1, 1]). Gradients flow to the images; the networks themselves never train.
"""

from __future__ import annotations

import abc
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_lightning.errors import ConfigError
from gan_lightning.metrics.errors import MetricsError
from gan_lightning.metrics.extractors import to_net_input
from gan_lightning.metrics.mnist import load_mnist_net

VGG16_TAPS = (3, 8, 15, 22, 29)  # relu1_2 ... relu5_3 in torchvision's vgg16().features
VGG16_TAP_CHANNELS = (64, 128, 256, 512, 512)
VGG16_MIN_SIDE = 16  # relu5_3 comes after four 2 x 2 max pools: a smaller side pools to nothing
MNIST_TAPS = (2, 5, 8, 11)  # after the ReLU of each conv stage, and of the 128-d feature layer
# LPIPS v0.1's ScalingLayer, (x - shift) / scale on images in [-1, 1]: ImageNet's mean/std normalisation of (x + 1) / 2
# (shift = 2 mean - 1, scale = 2 std), written in LPIPS's own numbers so results match the package's to the last bits.
LPIPS_SHIFT, LPIPS_SCALE = (-0.030, -0.088, -0.188), (0.458, 0.448, 0.450)
PROJECTION_MAX_SIDE = 256  # stylegan2-ada's projector and PPL area-downsample larger images to 256 px


class PerceptualDistance(nn.Module, abc.ABC):
    """``distance(x, y)`` -> (N,) squared distances between the image batches x and y (data space, same shape)."""

    def __init__(self, name: str, layers: nn.Sequential, taps: tuple[int, ...],
                 channel_weights: list[Tensor] | None = None):
        super().__init__()
        self.name, self.layers, self.taps = name, layers[: max(taps) + 1], set(taps)
        self.layers.eval().requires_grad_(False)
        # LPIPS's lin layers, one (1, C, 1, 1) 1 x 1 conv weight per tap (buffers: they move with .to(), never train)
        self.learned = channel_weights is not None
        for index, weight in enumerate(channel_weights or []):
            self.register_buffer(f"lin{index}", weight.detach().float().clone())

    def train(self, mode: bool = True) -> PerceptualDistance:
        return super().train(False)  # frozen: no dropout, no batch-norm updates whatever the caller does

    @abc.abstractmethod
    def preprocess(self, images: Tensor) -> Tensor:
        """Data-space images -> the network's input."""

    def features(self, images: Tensor) -> list[Tensor]:
        """The taps' activations, each unit-normalised along channels (LPIPS's normalize_tensor, eps 1e-10)."""
        x, taps = self.preprocess(images), []
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index in self.taps:
                taps.append(x / (x.square().sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return taps

    def from_features(self, a: list[Tensor], b: list[Tensor]) -> Tensor:
        """Distances of precomputed ``features`` (targets are extracted once, not every projection step)."""
        total = 0
        for index, (fa, fb) in enumerate(zip(a, b, strict=True)):
            diff = (fa - fb).square()
            # the learned weights as LPIPS applies them (a 1 x 1 conv, so the sum runs in the package's order)
            diff = F.conv2d(diff, getattr(self, f"lin{index}")).squeeze(1) if self.learned else diff.sum(dim=1)
            total = total + (diff.flatten(1).mean(dim=1) if diff.dim() > 1 else diff)
        return total

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.from_features(self.features(x), self.features(y))


class VGG16Distance(PerceptualDistance):
    """LPIPS on torchvision's VGG16; ``max_side``: images with a larger side are area-downsampled to ``max_side``
    square first (the projector's and PPL's rule), None compares them at their size (LPIPS as defined)."""

    def __init__(self, name: str, layers: nn.Sequential, channel_weights: list[Tensor] | None = None,
                 max_side: int | None = PROJECTION_MAX_SIDE):
        super().__init__(name, layers, VGG16_TAPS, channel_weights)
        self.max_side = max_side

    def preprocess(self, images: Tensor) -> Tensor:
        x = images.float()
        if min(x.shape[-2:]) < VGG16_MIN_SIDE:
            raise ValueError(f"LPIPS/VGG16 needs images of at least {VGG16_MIN_SIDE}x{VGG16_MIN_SIDE} pixels (four "
                             f"2x2 poolings before relu5_3), got {x.shape[-2]}x{x.shape[-1]}")
        if self.max_side is not None and x.shape[-1] > self.max_side:  # the reference's area downsampling
            x = F.adaptive_avg_pool2d(x, self.max_side)
        if x.shape[1] == 1:  # grey: the same value in R, G and B
            x = x.expand(-1, 3, -1, -1)
        return (x - x.new_tensor(LPIPS_SHIFT).view(1, 3, 1, 1)) / x.new_tensor(LPIPS_SCALE).view(1, 3, 1, 1)


class MNISTDistance(PerceptualDistance):
    def preprocess(self, images: Tensor) -> Tensor:
        # The classifier's input rule (luma, 28 px bilinear antialias); values clamped into its range, so pixels
        # outside [-1, 1] get no gradient from here (a pixel term beside it pulls them back).
        return to_net_input(images.float().clamp(-1.0, 1.0), 28, 1).contiguous(memory_format=torch.channels_last)


def mnist_distance(weights_path: str | Path | None = None) -> PerceptualDistance:
    return MNISTDistance("mnist-lpips", load_mnist_net(weights_path).body, MNIST_TAPS)


def load_vgg16_features(weights_path: str | Path) -> nn.Sequential:
    """torchvision's VGG16 ``features`` with the ImageNet weights of ``weights_path`` (its ``features.*`` entries,
    ``weights_only``); any other file is one MetricsError line naming it and the first wrong key or shape."""
    from gan_lightning.nets.vgg import load_vgg_weights, vgg_features

    features = vgg_features("vgg16", initialise=False)  # the file replaces every weight
    try:
        load_vgg_weights(features, weights_path, "vgg16", "--vgg-weights")
    except ConfigError as error:  # a bad file handed to a command is a bad input (exit 1), not a bad config
        raise MetricsError(str(error)) from None
    return features


def load_lpips_weights(path: str | Path) -> list[Tensor]:
    """LPIPS v0.1's learned weights for VGG16 (the ``lpips`` package's ``weights/v0.1/vgg.pth``): per tap k the
    1 x 1 conv weight ``lin{k}.model.1.weight`` of shape (1, C_k, 1, 1), C = 64, 128, 256, 512, 512, non-negative
    (the package clamps them during training). Anything else is one MetricsError line naming the file and the key."""
    path, option = Path(path), "--lpips-weights"
    expected = ("LPIPS v0.1's learned VGG weights, weights/v0.1/vgg.pth of the lpips package: "
                "lin0..lin4.model.1.weight of shapes (1, C, 1, 1), C = " + ", ".join(map(str, VGG16_TAP_CHANNELS)))
    if not path.is_file():
        raise MetricsError(f"{option}: {path} does not exist (expected {expected})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # the package's file holds CUDA tensors
    except Exception as error:  # noqa: BLE001 - truncated, random or malicious bytes raise many kinds of errors
        raise MetricsError(f"{option}: {path} cannot be read as a weights file ({type(error).__name__})") from None
    if not isinstance(state, dict):
        raise MetricsError(f"{option}: {path} is not a state dict (expected {expected})")
    weights = []
    for index, channels in enumerate(VGG16_TAP_CHANNELS):
        key, shape = f"lin{index}.model.1.weight", (1, channels, 1, 1)
        weight = state.get(key)
        if not isinstance(weight, Tensor):
            raise MetricsError(f"{option}: {path} lacks {key} (expected {expected})")
        if tuple(weight.shape) != shape:
            raise MetricsError(f"{option}: {path}: {key} has shape {tuple(weight.shape)}, LPIPS VGG16's is {shape} "
                               "(a file for net 'alex' or 'squeeze'?)")
        if not bool(torch.isfinite(weight).all()) or bool((weight < 0).any()):
            raise MetricsError(f"{option}: {path}: {key} holds negative or non-finite values (LPIPS's learned "
                               "weights are non-negative)")
        weights.append(weight)
    return weights


def vgg16_distance(weights_path: str | Path, lpips_path: str | Path | None = None) -> PerceptualDistance:
    """The VGG16 LPIPS distance of projection and PPL (images capped at 256 px): learned with ``lpips_path``, else
    the baseline variant."""
    features = load_vgg16_features(weights_path)
    if lpips_path is None:
        return VGG16Distance("vgg16-lpips", features)
    return VGG16Distance("vgg16-lpips-learned", features, load_lpips_weights(lpips_path))


def lpips_vgg(vgg_path: str | Path, lpips_path: str | Path) -> PerceptualDistance:
    """LPIPS v0.1, net 'vgg', as papers report it: learned weights, images compared at their full size."""
    return VGG16Distance("lpips-vgg-v0.1", load_vgg16_features(vgg_path), load_lpips_weights(lpips_path),
                         max_side=None)


def build_distance(vgg_weights: str | Path | None, channels: int,
                   lpips_weights: str | Path | None = None) -> PerceptualDistance | None:
    """VGG16 when its weights are given (learned LPIPS with ``lpips_weights``); else the MNIST net for one-channel
    (digit) models; else None (no offline perceptual network fits RGB images)."""
    if vgg_weights is not None:
        return vgg16_distance(vgg_weights, lpips_weights)
    if lpips_weights is not None:
        raise MetricsError(f"--lpips-weights {lpips_weights}: LPIPS's learned weights sit on VGG16; give --vgg-weights "
                           "(torchvision's vgg16-397923af.pth) too")
    return mnist_distance() if channels == 1 else None
