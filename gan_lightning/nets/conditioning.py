"""Label conditioning shared by generators and discriminators (Mirza & Osindero 2014)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LabelEmbedding(nn.Module):
    """Learned class embedding; ``None`` labels (unconditional nets) pass the input through unchanged."""

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
        embedded = self.embedding(labels)
        embedded = embedded.view(*embedded.shape, *([1] * (features.dim() - 2)))
        return torch.cat([features, embedded.expand(-1, -1, *features.shape[2:])], dim=1)
