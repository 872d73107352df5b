"""Feature matching (Salimans et al. 2016, section 3.1): G matches the mean of D's last hidden layer on real data,
||mean f(x) - mean f(G(z))||^2, added to its loss with a weight, or (``feature_matching_only``) as its whole loss,
the paper's form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from gan_lightning.errors import ConfigError
from gan_lightning.losses import feature_matching
from gan_lightning.techniques.base import LossTerm, Technique


@dataclass
class FeatureMatchingConfig:
    feature_matching: float = 0.0  # weight in G's loss; 0 = off
    feature_matching_only: bool = False  # G minimises feature matching alone


class FeatureMatching(Technique):
    Config = FeatureMatchingConfig

    @classmethod
    def enabled(cls, config: Any) -> bool:
        return config.feature_matching > 0 or config.feature_matching_only  # either key turns it on

    @classmethod
    def checks(cls, config: Any) -> list[tuple[str, bool, str]]:
        return [("feature_matching", config.feature_matching >= 0, "a float >= 0")]

    def setup(self, model: Any) -> None:
        if not hasattr(model.discriminator, "features"):
            raise ConfigError(f"model.feature_matching: {model.registry_name}'s discriminator has no features()")
        model.adversarial_generator_loss = not self.config.feature_matching_only

    def generator_term(self, model: Any, batch: Any, fakes: Any) -> LossTerm:
        with torch.no_grad():
            real_features = model.discriminator_features(batch.real, batch.labels)
        matching = feature_matching(real_features, model.discriminator_features(fakes, batch.labels))
        weight = 1.0 if self.config.feature_matching_only else self.config.feature_matching
        return "feature_matching", matching, weight
