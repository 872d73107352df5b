"""Label conditioning shared by generators and discriminators (Mirza & Osindero 2014)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def embed_labels(embedding: nn.Embedding, labels: Tensor) -> Tensor:
    """Class labels (integers) -> their embedding rows; multi-hot attribute vectors (floats, N x K) -> the sum of the
    rows of the attributes present. A one-hot vector embeds exactly as its class index does."""
    if labels.is_floating_point():
        return labels.to(embedding.weight.dtype) @ embedding.weight
    return embedding(labels)


class LabelEmbedding(nn.Module):
    """Learned class (or attribute) embedding; ``None`` labels (unconditional nets) pass the input through
    unchanged. ``num_classes`` counts classes, or attributes for multi-hot labels (see ``embed_labels``)."""

    def __init__(self, num_classes: int | None, dim: int):
        super().__init__()
        self.dim = dim if num_classes else 0
        self.embedding = nn.Embedding(num_classes, dim) if num_classes else None

    def concat(self, features: Tensor, labels: Tensor | None) -> Tensor:
        """Concatenate the embedding along dim 1, broadcast over any spatial dims of ``features``."""
        if self.embedding is None:
            return features
        if labels is None:
            raise ValueError("this network is conditional: pass class labels")
        embedded = embed_labels(self.embedding, labels)
        embedded = embedded.view(*embedded.shape, *([1] * (features.dim() - 2)))
        return torch.cat([features, embedded.expand(-1, -1, *features.shape[2:])], dim=1)


class ProjectionDiscriminator(nn.Module):
    """Miyato & Koyama 2018: D(x, y) = head(f(x)) + <embed(y), f(x)> for an unconditional ``net``; for multi-hot
    attributes embed(y) is the sum of the present attributes' embeddings.

    ``net`` must have ``features(x)``, ``feature_dim`` (the flattened size of those features) and ``head``.
    The wrapper exposes the same three, so feature matching and minibatch discrimination still apply.
    """

    def __init__(self, net: nn.Module, num_classes: int):
        super().__init__()
        self.net = net
        self.feature_dim = net.feature_dim
        self.head = net.head
        self.embedding = nn.Embedding(num_classes, net.feature_dim)
        nn.init.normal_(self.embedding.weight, 0.0, 0.02)

    def features(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net.features(x)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        features = self.features(x)
        unconditional = self.head(features).flatten()
        return unconditional + (embed_labels(self.embedding, labels) * features.flatten(1)).sum(1)
