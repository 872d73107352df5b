"""Differentiable perceptual distances between two image batches, for projection and perceptual path length.

One recipe, LPIPS's (Zhang et al. 2018) without its learned per-channel weights (the paper's "baseline" variant):
run both batches through a frozen network, take the activations at a few depths, normalise each position's channel
vector to unit length, and sum over the taps the spatial mean of the squared difference. Per sample, so a batch of
projections or path segments stays independent.

- ``vgg16_distance(path)``: torchvision's VGG16 ImageNet file (``vgg16-397923af.pth``, only its ``features.*``
  entries are read, ``weights_only``), taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 as LPIPS; images over 256 px
  are area-downsampled to 256 first, as stylegan2-ada's projector and PPL do.
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

from gan_lightning.metrics.errors import MetricsError
from gan_lightning.metrics.extractors import to_net_input
from gan_lightning.metrics.mnist import load_mnist_net

VGG16_TAPS = (3, 8, 15, 22, 29)  # relu1_2 ... relu5_3 in torchvision's vgg16().features
MNIST_TAPS = (2, 5, 8, 11)  # after the ReLU of each conv stage, and of the 128-d feature layer
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class PerceptualDistance(nn.Module, abc.ABC):
    """``distance(x, y)`` -> (N,) squared distances between the image batches x and y (data space, same shape)."""

    def __init__(self, name: str, layers: nn.Sequential, taps: tuple[int, ...]):
        super().__init__()
        self.name, self.layers, self.taps = name, layers[: max(taps) + 1], set(taps)
        self.layers.eval().requires_grad_(False)

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
        for fa, fb in zip(a, b, strict=True):
            diff = (fa - fb).square().sum(dim=1)
            total = total + (diff.flatten(1).mean(dim=1) if diff.dim() > 1 else diff)
        return total

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.from_features(self.features(x), self.features(y))


class VGG16Distance(PerceptualDistance):
    def preprocess(self, images: Tensor) -> Tensor:
        x = images.float()
        if x.shape[-1] > 256:  # the reference's area downsampling of large images
            x = F.adaptive_avg_pool2d(x, 256)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        mean, std = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1), x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return ((x + 1) / 2 - mean) / std


class MNISTDistance(PerceptualDistance):
    def preprocess(self, images: Tensor) -> Tensor:
        # The classifier's input rule (luma, 28 px bilinear antialias); values clamped into its range, so pixels
        # outside [-1, 1] get no gradient from here (a pixel term beside it pulls them back).
        return to_net_input(images.float().clamp(-1.0, 1.0), 28, 1).contiguous(memory_format=torch.channels_last)


def mnist_distance(weights_path: str | Path | None = None) -> PerceptualDistance:
    return MNISTDistance("mnist-lpips", load_mnist_net(weights_path).body, MNIST_TAPS)


def vgg16_distance(weights_path: str | Path) -> PerceptualDistance:
    """The VGG16 LPIPS-style distance from torchvision's ImageNet weights file; one line if it is not one."""
    from torchvision.models.vgg import cfgs, make_layers

    path = Path(weights_path)
    if not path.is_file():
        raise MetricsError(f"VGG16 weights file not found: {path} (torchvision's vgg16-397923af.pth)")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure is "not a weights file" to the user
        raise MetricsError(f"{path} is not a torch weights file ({type(error).__name__})") from None
    state = saved.get("state_dict", saved) if isinstance(saved, dict) else None
    features = {key[len("features."):]: value for key, value in (state or {}).items() if key.startswith("features.")}
    net = make_layers(cfgs["D"])  # vgg16().features without building (and randomly initialising) its classifier
    try:
        net.load_state_dict(features)
    except RuntimeError:
        raise MetricsError(f"{path} does not hold torchvision's VGG16 weights (its features.* entries of the "
                           "right shapes)") from None
    return VGG16Distance("vgg16-lpips", net, VGG16_TAPS)


def build_distance(vgg_weights: str | Path | None, channels: int) -> PerceptualDistance | None:
    """VGG16 when its weights are given; else the MNIST net for one-channel (digit) models; else None (no offline
    perceptual network fits RGB images)."""
    if vgg_weights is not None:
        return vgg16_distance(vgg_weights)
    return mnist_distance() if channels == 1 else None
