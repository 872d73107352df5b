"""Feature extractors for FID/KID (``features``) and IS (``logits``), with their preprocessing made explicit.

Every extractor takes images in data space: float (N, C, H, W), C in {1, 3}, values in [-1, 1] (what the
generators' tanh and the datamodules produce) and applies (steps 1 and 2 are linear, so they commute):
  1. channels: grayscale repeated to RGB for RGB nets; RGB -> luma (ITU-R 601) for grayscale nets;
  2. resize to the net's input size by the extractor's resize ``protocol`` (clean-fid showed the filter moves FID
     by whole points, so it is part of the extractor's ``name`` and therefore of the cached statistics' key):
       ``antialias`` (default): torch bilinear, antialias=True, align_corners=False;
       ``tf``: the TF1 bilinear (align_corners=False, no half-pixel centres) of the original TTUR code,
               torch-fidelity and torchmetrics;
       ``clean``: clean-fid's PIL bicubic on float pixels in [0, 255], per channel, clipped to [0, 255];
  3. an affine map from [-1, 1] to the net's input range.
Extractors are frozen: no gradients and always in eval mode (``.train()`` is a no-op), because batch-norm
statistics updated by a stray ``model.train()`` would silently change every score.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_lightning.metrics.errors import MetricsError
from gan_lightning.metrics.inception import load_fid_inception
from gan_lightning.metrics.math import class_histogram
from gan_lightning.metrics.mnist import SHIPPED_WEIGHTS, load_mnist_net

# Luma weights for RGB -> gray (ITU-R BT.601, what PIL's convert("L") uses).
_LUMA = (0.299, 0.587, 0.114)
# Data space is [-1, 1]; a small tolerance admits bilinear/float round-off from generators and loaders.
_RANGE_TOL = 1e-3


class ExtractorOutput(NamedTuple):
    features: Tensor  # (N, feature_dim) for FID / KID
    logits: Tensor  # (N, num_classes) for IS and class histograms


def _antialias_bilinear(x: Tensor, size: int) -> Tensor:
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def _tf1_axis(n_in: int, n_out: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    # TF1 ResizeBilinear without half-pixel centres: output i samples input i * n_in / n_out (scale in float32).
    scale = torch.tensor(n_in / n_out, dtype=torch.float32)
    source = torch.arange(n_out, dtype=torch.float32) * scale
    low = source.floor().long().clamp(max=n_in - 1)
    return low.to(device), (low + 1).clamp(max=n_in - 1).to(device), (source - low).to(device)


def _tf1_bilinear(x: Tensor, size: int) -> Tensor:
    top, bottom, dy = _tf1_axis(x.shape[-2], size, x.device)
    left, right, dx = _tf1_axis(x.shape[-1], size, x.device)
    rows = x[..., top, :] + (x[..., bottom, :] - x[..., top, :]) * dy[:, None]
    return rows[..., left] + (rows[..., right] - rows[..., left]) * dx


def _clean_bicubic(x: Tensor, size: int) -> Tensor:
    # clean-fid's "clean" resize, run where clean-fid runs it: PIL on the CPU, one float32 'F' image per channel.
    import numpy as np
    from PIL import Image

    pixels = ((x.detach().cpu().double() + 1) * 127.5).float().numpy()
    resized = np.stack([[np.asarray(Image.fromarray(channel, mode="F").resize((size, size), Image.BICUBIC))
                         for channel in image] for image in pixels]).clip(0, 255)
    return (torch.from_numpy(resized).double() / 127.5 - 1).float().to(x.device)


# name -> resize(images in data space, size) -> images in data space. "antialias" is the default (and the only
# protocol before they became selectable: its extractor names, hence cached statistics, are unchanged).
RESIZE_PROTOCOLS = {"antialias": _antialias_bilinear, "tf": _tf1_bilinear, "clean": _clean_bicubic}
DEFAULT_PROTOCOL = "antialias"


def to_net_input(images: Tensor, size: int, channels: int, scale: float = 1.0, shift: float = 0.0,
                 protocol: str = DEFAULT_PROTOCOL) -> Tensor:
    """Data-space images -> net input: channel conversion, resize by ``protocol``, x * scale + shift."""
    if not torch.is_tensor(images) or images.dim() != 4 or images.shape[1] not in (1, 3):
        shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise MetricsError(f"extractors expect images of shape (N, C, H, W) with C in (1, 3), got {shape}")
    if not images.is_floating_point():
        raise MetricsError(f"extractors expect float images in [-1, 1], got dtype {images.dtype}")
    lo, hi = float(images.detach().min()), float(images.detach().max())  # detached: perceptual losses pass graphs
    if lo < -1 - _RANGE_TOL or hi > 1 + _RANGE_TOL:
        raise MetricsError(f"extractors expect images in data space [-1, 1], got values in [{lo:.3g}, {hi:.3g}]")
    x = images.float()
    if x.shape[1] == 3 and channels == 1:
        x = (x * x.new_tensor(_LUMA).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    if x.shape[-2:] != (size, size):
        x = RESIZE_PROTOCOLS[protocol](x, size)
    if x.shape[1] == 1 and channels == 3:  # after the resize: one channel is 3x cheaper to resize
        x = x.expand(-1, 3, -1, -1)
    return x * scale + shift


class FeatureExtractor(nn.Module):
    """Common interface. Subclasses set the class attributes and build ``self.net`` returning (features, logits)."""

    name: str  # part of cached-statistics keys: change it whenever weights or preprocessing change
    feature_dim: int
    num_classes: int
    input_size: int
    input_channels: int
    input_scale: float = 1.0
    input_shift: float = 0.0
    protocol: str = DEFAULT_PROTOCOL  # the resize: set with use_protocol, which also renames the extractor
    net: nn.Module

    def use_protocol(self, protocol: str) -> FeatureExtractor:
        """Resize by ``protocol`` from now on; the name (the statistics cache key) says so unless it is the default."""
        if protocol not in RESIZE_PROTOCOLS:
            raise MetricsError(f"unknown resize protocol {protocol!r}; accepted: {', '.join(RESIZE_PROTOCOLS)}")
        base = self.name.removesuffix(f"-resize-{self.protocol}")
        self.protocol = protocol
        self.name = base if protocol == DEFAULT_PROTOCOL else f"{base}-resize-{protocol}"
        return self

    def _freeze(self) -> None:
        self.net.eval()
        self.requires_grad_(False)

    def train(self, mode: bool = True) -> FeatureExtractor:
        return super().train(False)

    def preprocess(self, images: Tensor) -> Tensor:
        return to_net_input(images, self.input_size, self.input_channels, self.input_scale, self.input_shift,
                            self.protocol)

    @torch.no_grad()
    def forward(self, images: Tensor) -> ExtractorOutput:
        device = next(self.net.parameters()).device
        features, logits = self.net(self.preprocess(images.to(device)))
        return ExtractorOutput(features, logits)


class InceptionFID(FeatureExtractor):
    """FID Inception-v3 (pt_inception-2015-12-05): 2048-d pool3 features, 1008 logits (bias-free, as for IS).

    Input range: the TF graph maps uint8 pixels u to (u - 128) / 128. Data space x = u / 127.5 - 1, so the
    exact map is x * 127.5 / 128 + (127.5 - 128) / 128 (pytorch-fid's 2x - 1 on [0, 1] is 0.4% off from it).
    Resize: 299x299 bilinear antialias (upsampling 28/32/64-px images; antialias only acts when shrinking).
    ``weights_path``: the ``callbacks.metrics.inception_weights`` config value; None = torch hub cache,
    downloading when ``download`` and online.
    """

    name = "inception-fid-v3-bilinear299"
    feature_dim = 2048
    num_classes = 1008
    input_size = 299
    input_channels = 3
    input_scale = 127.5 / 128
    input_shift = (127.5 - 128) / 128

    def __init__(self, weights_path: str | Path | None = None, download: bool = True) -> None:
        super().__init__()
        self.net = load_fid_inception(weights_path, download)
        self._freeze()


class MNISTClassifier(FeatureExtractor):
    """Small MNIST CNN (trained by ``python -m gan_lightning.metrics.train_mnist_classifier``): 128-d features.

    Input: 1x28x28 in [-1, 1] (the range it was trained in: identity map); RGB is converted to luma, other
    sizes resized bilinear antialias to 28x28 (e.g. 32x32 DCGAN digits). ``name`` carries a digest of the
    weights file so retrained weights never reuse statistics cached with the old ones.
    """

    feature_dim = 128
    num_classes = 10
    input_size = 28
    input_channels = 1

    def __init__(self, weights_path: str | Path | None = None) -> None:
        super().__init__()
        path = Path(weights_path) if weights_path is not None else SHIPPED_WEIGHTS
        self.net = load_mnist_net(path)
        self.name = f"mnist-cnn-{hashlib.sha256(path.read_bytes()).hexdigest()[:8]}"
        self._freeze()

    def class_histogram(self, images: Tensor) -> Tensor:
        """Counts of predicted digits (length 10): mode coverage, e.g. ``(hist > 0).sum()`` digits produced."""
        return class_histogram(self(images).logits, self.num_classes)


EXTRACTORS: dict[str, type[FeatureExtractor]] = {"inception": InceptionFID, "mnist": MNISTClassifier}


def build_extractor(name: str, protocol: str = DEFAULT_PROTOCOL, **kwargs) -> FeatureExtractor:
    """Instantiate a registered extractor by name with a resize ``protocol`` (kwargs go to its constructor, e.g.
    ``weights_path``)."""
    if name not in EXTRACTORS:
        raise MetricsError(f"unknown feature extractor {name!r}; accepted: {', '.join(sorted(EXTRACTORS))}")
    return EXTRACTORS[name](**kwargs).use_protocol(protocol)
