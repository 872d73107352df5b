"""VGG19 features for perceptual (content) losses: SRGAN's relu5_4, ESRGAN's conv5_4 before the activation; and the
one reader of torchvision's VGG weights files (VGG19 here, VGG16 for the LPIPS distances of ``metrics/perceptual.py``).

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

import functools
from pathlib import Path

import torch
from torch import Tensor, nn

from gan_lightning.errors import ConfigError

# torchvision's ImageNet normalisation, applied to images in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# torchvision's configuration letter and ImageNet weights file of each VGG the framework reads.
VGG_NETWORKS = {"vgg16": ("D", "vgg16-397923af.pth"), "vgg19": ("E", "vgg19-dcbb9e9d.pth")}


def vgg_features(network: str = "vgg19", initialise: bool = True) -> nn.Sequential:
    """torchvision's ``features`` of ``network`` (convs, ReLUs, max pools), built by torchvision's own
    ``make_layers`` without the classifier, whose 120M parameters a feature extractor never uses (and which take
    seconds to initialise); ``initialise`` gives the convs the random initialisation ``vgg19(weights=None)`` gives
    them (skip it when a weights file replaces them anyway)."""
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs[VGG_NETWORKS[network][0]], batch_norm=False)
    if initialise:
        for module in features:
            if isinstance(module, nn.Conv2d):  # torchvision's VGG._initialize_weights for convs
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
    return features


def vgg19_features() -> nn.Sequential:
    """torchvision's VGG19 ``features``, randomly initialised as ``vgg19(weights=None)`` initialises them."""
    return vgg_features("vgg19")


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


@functools.cache
def vgg_layer_names(network: str) -> tuple[str, ...]:
    """The paper names of ``network``'s ``features`` layers (built on the meta device: no memory, no init)."""
    with torch.device("meta"):
        return tuple(layer_names(vgg_features(network, initialise=False)))


VGG19_LAYERS = vgg_layer_names("vgg19")


def layer_index(name: str) -> int:
    """Index in torchvision's vgg19 ``features`` of the layer ``name`` (ConfigError naming the valid ones)."""
    if name not in VGG19_LAYERS:
        raise ConfigError(f"VGG19 has no layer {name!r}; layers are named conv1_1, relu1_1, ..., pool5 (e.g. relu5_4, "
                          "conv5_4, relu2_2)")
    return VGG19_LAYERS.index(name)


def load_vgg_weights(features: nn.Sequential, path: str | Path, network: str = "vgg19",
                     option: str = "model.vgg_weights") -> None:
    """torchvision's ``network`` weights file (its ``features.*`` entries) into ``features`` (possibly cut short);
    anything else is one ConfigError line starting with ``option`` and naming the file and the first wrong key."""
    path, expected_file = Path(path), f"torchvision's {network} file, {VGG_NETWORKS[network][1]}"
    if not path.is_file():
        raise ConfigError(f"{option}: {path} does not exist ({expected_file})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, random or malicious bytes raise many kinds of errors
        raise ConfigError(f"{option}: {path} cannot be read as a weights file ({type(error).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):  # a training script's wrapper
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConfigError(f"{option}: {path} is not a state dict (expected {expected_file})")
    prefix = "features."
    given = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
    expected = features.state_dict()
    missing = [key for key in expected if key not in given]
    if missing:
        raise ConfigError(f"{option}: {path} lacks {prefix}{missing[0]} (expected {expected_file})")
    # Keys beyond the cut are the later layers of the same network; a key that no layer of it has means another file.
    conv_keys = {f"{i}.{kind}" for i, name in enumerate(vgg_layer_names(network)) if name.startswith("conv")
                 for kind in ("weight", "bias")}
    unexpected = [key for key in given if key not in conv_keys]
    if unexpected:
        raise ConfigError(f"{option}: {path} has {prefix}{unexpected[0]}, which {network.upper()} does not (expected "
                          f"{expected_file})")
    for key, tensor in expected.items():
        if not isinstance(given[key], torch.Tensor) or given[key].shape != tensor.shape:
            shape = tuple(given[key].shape) if isinstance(given[key], torch.Tensor) else type(given[key]).__name__
            raise ConfigError(f"{option}: {path}: {prefix}{key} has shape {shape}, {network.upper()}'s is "
                              f"{tuple(tensor.shape)}")
    features.load_state_dict({key: given[key] for key in expected})


def load_vgg19_weights(features: nn.Sequential, path: str | Path) -> None:
    """torchvision's vgg19 weights file (``model.vgg_weights``) into ``features`` (possibly cut short)."""
    load_vgg_weights(features, path, "vgg19")


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
