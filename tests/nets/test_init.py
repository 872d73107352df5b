"""The initialisation rule of every shipped net, asserted parameter by parameter.

DCGAN nets (dcgan_init_): every convolution weight N(0, 0.02) and batchnorm scale N(1, 0.02), batchnorm shift 0;
convolution biases keep PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)). MLP nets keep PyTorch's defaults
throughout. Label embeddings keep nn.Embedding's N(0, 1); the projection embedding is N(0, 0.02).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from gan_lightning.nets.conditioning import ProjectionDiscriminator
from gan_lightning.nets.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_init_
from gan_lightning.nets.mlp import MLPDiscriminator, MLPGenerator


def default_bound(layer: nn.Module) -> float:
    """PyTorch's default bias (and, with kaiming_uniform(a=sqrt(5)), weight) bound: 1/sqrt(fan_in), fan_in
    computed from the weight as nn.init does (for a transposed convolution, out_channels * kernel area)."""
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(layer.weight)
    return 1.0 / math.sqrt(fan_in)


def assert_normal(values: Tensor, mean: float, std: float) -> None:
    values = values.detach().flatten()
    assert values.numel() >= 64, "too few values to judge a distribution"
    # the sample std of n normal draws has a relative sd of about 1/sqrt(2n): 15 % is > 5 sd for n >= 600,
    # 35 % is 4 sd at n = 64
    assert values.std().item() == pytest.approx(std, rel=0.15 if values.numel() >= 600 else 0.35)
    assert abs(values.mean().item() - mean) < 4 * std / math.sqrt(values.numel())


def assert_default_uniform(values: Tensor, bound: float) -> None:
    """Drawn from U(-bound, bound): inside the bound, not all zero, and (with enough values) spread like it."""
    values = values.detach().flatten()
    assert values.abs().max().item() <= bound
    assert values.abs().max().item() > 0
    if values.numel() >= 64:  # U(-b, b) has std b / sqrt(3)
        assert values.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.25)


def convs(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def test_dcgan_generator_weights_are_n002_and_the_output_bias_keeps_the_default() -> None:
    torch.manual_seed(0)
    net = DCGANGenerator(latent_dim=100, channels=1, image_size=28, width=64)
    dcgan_init_(net)
    layers = convs(net)
    assert len(layers) == 3
    for layer in layers:
        assert_normal(layer.weight, 0.0, 0.02)
    # only the output convolution has a bias (the hidden ones feed batchnorm, whose shift makes a bias redundant)
    assert [layer.bias is not None for layer in layers] == [False, False, True]
    assert_default_uniform(layers[-1].bias, default_bound(layers[-1]))
    assert default_bound(layers[-1]) == pytest.approx(1 / math.sqrt(1 * 4 * 4))  # ConvT fan_in: out * k * k
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 2
    for norm in norms:
        assert_normal(norm.weight, 1.0, 0.02)
        assert torch.equal(norm.bias, torch.zeros_like(norm.bias))


@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
def test_dcgan_discriminator_weights_are_n002_and_every_bias_keeps_the_default(norm: str) -> None:
    torch.manual_seed(0)
    net = DCGANDiscriminator(channels=1, image_size=28, width=64, norm=norm)
    dcgan_init_(net)
    layers = convs(net)
    assert len(layers) == 3  # input, one hidden stage, head
    for layer in layers:
        assert_normal(layer.weight, 0.0, 0.02)
    # the hidden convolution has a bias only without a normalisation layer after it
    assert [layer.bias is not None for layer in layers] == [True, norm == "none", True]
    for layer in layers:
        if layer.bias is not None:
            assert_default_uniform(layer.bias, default_bound(layer))
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert_normal(m.weight, 1.0, 0.02)
            assert torch.equal(m.bias, torch.zeros_like(m.bias))
        if isinstance(m, nn.GroupNorm):  # not a DCGAN layer: PyTorch's identity affine
            assert torch.equal(m.weight, torch.ones_like(m.weight))
            assert torch.equal(m.bias, torch.zeros_like(m.bias))


def test_conditional_dcgan_label_embeddings_keep_the_default_and_projection_is_n002() -> None:
    torch.manual_seed(0)
    generator = DCGANGenerator(latent_dim=100, channels=1, image_size=28, width=64, num_classes=10)
    discriminator = DCGANDiscriminator(channels=1, image_size=28, width=64, num_classes=10)
    for net in (generator, discriminator):
        dcgan_init_(net)
        assert_normal(net.labels.embedding.weight, 0.0, 1.0)  # nn.Embedding's N(0, 1), untouched
    plain = DCGANDiscriminator(channels=1, image_size=28, width=64)
    dcgan_init_(plain)
    projection = ProjectionDiscriminator(plain, num_classes=10)
    assert_normal(projection.embedding.weight, 0.0, 0.02)


def test_mlp_nets_keep_pytorch_defaults() -> None:
    torch.manual_seed(0)
    for net in (MLPGenerator(100, (1, 28, 28)), MLPDiscriminator((1, 28, 28))):
        layers = [m for m in net.modules() if isinstance(m, nn.Linear)]
        assert len(layers) == 3
        for layer in layers:
            assert_default_uniform(layer.weight, default_bound(layer))  # kaiming_uniform(a=sqrt(5)): 1/sqrt(fan_in)
            assert_default_uniform(layer.bias, default_bound(layer))
