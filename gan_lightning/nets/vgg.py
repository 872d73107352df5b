"""VGG19 features for perceptual (content) losses: SRGAN's relu5_4, ESRGAN's conv5_4 before the activation.

The network is torchvision's ``vgg19`` (built with ``weights=None``: its ImageNet weights cannot be downloaded
offline), cut after the named layer. Layers are named as in the papers, ``conv{block}_{n}``, ``relu{block}_{n}``,
``pool{block}``, and mapped to indices of torchvision's ``features`` by walking that Sequential, so the map follows
torchvision's own layer order (``layer_index("relu5_4") == 35``, ``layer_index("conv5_4") == 34``).

Weights: ``load_vgg19_weights(FILE)`` reads torchvision's ``vgg19-dcbb9e9d.pth`` (``torch.load(weights_only=True)``,
the classifier's keys ignored) and refuses a file that lacks a feature key, or has one the network does not, in one
line naming the file and the key. ``VGGFeatures(layer, weights=None)`` keeps torchvision's random initialisation:
tests and offline recipes ask for that explicitly (see ``models/superres.py``); a real run must give the file.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from gan_lightning.errors import ConfigError

# torchvision's ImageNet normalisation, applied to images in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_features() -> nn.Sequential:
    """torchvision's VGG19 ``features`` (convs, ReLUs, max pools), randomly initialised as ``vgg19(weights=None)``
    initialises them: built by torchvision's own ``make_layers`` from its configuration "E" (VGG19), without the
    classifier, whose 120M parameters a feature extractor never uses (and which take seconds to initialise)."""
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["E"], batch_norm=False)
    for module in features:
        if isinstance(module, nn.Conv2d):  # torchvision's VGG._initialize_weights for convs
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
    return features


def layer_names(features: nn.Sequential) -> list[str]:
    """The paper name of each module of a VGG ``features`` Sequential, in order."""
    names, block, conv = [], 1, 0
    for module in features:
        if isinstance(module, nn.Conv2d):
            conv += 1
            names.append(f"conv{block}_{conv}")
        elif isinstance(module, nn.ReLU):
            names.append(f"relu{block}_{conv}")
        elif isinstance(module, nn.MaxPool2d):
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            raise TypeError(f"unexpected VGG module {type(module).__name__}")
    return names


VGG19_LAYERS = tuple(layer_names(vgg19_features()))


def layer_index(name: str) -> int:
    """Index in torchvision's vgg19 ``features`` of the layer ``name`` (ConfigError naming the valid ones)."""
    if name not in VGG19_LAYERS:
        raise ConfigError(f"VGG19 has no layer {name!r}; layers are named conv1_1, relu1_1, ..., pool5 (e.g. relu5_4, "
                          "conv5_4, relu2_2)")
    return VGG19_LAYERS.index(name)


def load_vgg19_weights(features: nn.Sequential, path: str | Path) -> None:
    """torchvision's vgg19 weights file (its ``features.*`` entries) into ``features`` (possibly cut short)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"model.vgg_weights: {path} does not exist (torchvision's vgg19 file, vgg19-dcbb9e9d.pth)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, random or malicious bytes raise many kinds of errors
        raise ConfigError(f"model.vgg_weights: {path} cannot be read as a weights file ({type(error).__name__})"
                          ) from None
    if not isinstance(state, dict):
        raise ConfigError(f"model.vgg_weights: {path} is not a state dict (expected torchvision's vgg19 file)")
    prefix = "features."
    given = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
    expected = features.state_dict()
    missing = [key for key in expected if key not in given]
    if missing:
        raise ConfigError(f"model.vgg_weights: {path} lacks {prefix}{missing[0]} (expected torchvision's vgg19 "
                          "file, vgg19-dcbb9e9d.pth)")
    # Keys beyond the cut are the later layers of the same network; a key that no VGG19 layer has means another file.
    conv_keys = {f"{i}.{kind}" for i, name in enumerate(VGG19_LAYERS) if name.startswith("conv")
                 for kind in ("weight", "bias")}
    unexpected = [key for key in given if key not in conv_keys]
    if unexpected:
        raise ConfigError(f"model.vgg_weights: {path} has {prefix}{unexpected[0]}, which VGG19 does not (expected "
                          "torchvision's vgg19 file)")
    for key, tensor in expected.items():
        if given[key].shape != tensor.shape:
            raise ConfigError(f"model.vgg_weights: {path}: {prefix}{key} has shape {tuple(given[key].shape)}, VGG19's "
                              f"is {tuple(tensor.shape)}")
    features.load_state_dict({key: given[key] for key in expected})


class VGGFeatures(nn.Module):
    """Images in [-1, 1] (1 or 3 channels) -> VGG19 features at ``layer``. Frozen: no parameter trains, and it
    stays in eval mode (no dropout or norm in ``features`` anyway)."""

    def __init__(self, layer: str, weights: str | Path | None = None) -> None:
        super().__init__()
        self.layer = layer
        features = vgg19_features()[: layer_index(layer) + 1]
        if weights is not None:
            load_vgg19_weights(features, weights)
        self.features = features.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> VGGFeatures:
        return super().train(False)

    def forward(self, images: Tensor) -> Tensor:
        if images.shape[1] == 1:  # grey images: the same value in R, G and B
            images = images.expand(-1, 3, -1, -1)
        return self.features(((images + 1) / 2 - self.mean) / self.std)
