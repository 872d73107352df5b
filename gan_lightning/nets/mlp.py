"""Fully connected G and D (Goodfellow et al. 2014), for MNIST-sized images and 2-D toy data."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from gan_lightning.nets.conditioning import LabelEmbedding

MLP_NORMS = ("none", "batch")  # normalisation after each hidden layer of MLPGenerator


class MLPGenerator(nn.Module):
    def __init__(self, latent_dim: int, sample_shape: Sequence[int], hidden: Sequence[int] = (256, 512),
                 num_classes: int | None = None, embed_dim: int = 10, tanh_output: bool = True, norm: str = "none"):
        super().__init__()
        if norm not in MLP_NORMS:
            raise ValueError(f"unknown norm {norm!r}; accepted: {', '.join(MLP_NORMS)}")
        self.sample_shape = tuple(sample_shape)
        self.labels = LabelEmbedding(num_classes, embed_dim)
        layers: list[nn.Module] = []
        width = latent_dim + self.labels.dim
        for size in hidden:
            layers.append(nn.Linear(width, size))
            if norm == "batch":  # (virtual batch norm replaces these when the model asks for it)
                layers.append(nn.BatchNorm1d(size))
            layers.append(nn.ReLU(inplace=True))
            width = size
        layers.append(nn.Linear(width, math.prod(self.sample_shape)))
        if tanh_output:  # images live in [-1, 1]; 2-D toy points are unbounded
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(self.labels.concat(z, labels)).view(z.shape[0], *self.sample_shape)


class MLPDiscriminator(nn.Module):
    """``features`` is the last hidden layer (used by feature matching); ``head`` maps it to one logit."""

    def __init__(self, sample_shape: Sequence[int], hidden: Sequence[int] = (512, 256),
                 num_classes: int | None = None, embed_dim: int = 10, dropout: float = 0.0):
        super().__init__()
        self.labels = LabelEmbedding(num_classes, embed_dim)
        layers: list[nn.Module] = []
        width = math.prod(sample_shape) + self.labels.dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LeakyReLU(0.2, inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        self.body = nn.Sequential(*layers)
        self.feature_dim = width
        self.head = nn.Linear(width, 1)

    def features(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.body(self.labels.concat(x.flatten(1), labels))

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.head(self.features(x, labels)).squeeze(1)
