"""The latent prior: z ~ N(0, I), or a Gaussian mixture (DeLiGAN, Gurumurthy et al. 2017; GM-GAN, Ben-Yosef &
Weinshall 2018).

mixture: z = mu_k + s * eps, k uniform over ``latent_components`` fixed means mu_k ~ N(0, I) (drawn at init from the
run's seed, checkpointed as the ``latent_means`` buffer), s = ``latent_component_std``. A mixture gives G disjoint
latent regions, so it can place disjoint modes without spending latent mass on the bridges between them. Use more
components than the data has modes: G learns which components go where.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gan_lightning.latent import sample_prior
from gan_lightning.techniques.base import Technique

PRIORS = ("normal", "mixture")


@dataclass
class LatentPriorConfig:
    latent_prior: str = "normal"  # normal | mixture
    latent_components: int = 100  # mixture: Gaussian components of the prior
    latent_component_std: float = 0.02  # mixture: std of each component


class LatentPrior(Technique):
    Config = LatentPriorConfig

    @classmethod
    def checks(cls, config: Any) -> list[tuple[str, bool, str]]:
        return [("latent_prior", config.latent_prior in PRIORS, ", ".join(PRIORS)),
                ("latent_components", config.latent_components >= 1, "an int >= 1"),
                ("latent_component_std", config.latent_component_std > 0, "a float > 0")]

    def before_networks(self, model: Any) -> None:
        # Drawn before the networks are initialised (the order of the run's random stream); a buffer (None for the
        # normal prior), so the means travel with the weights.
        config = self.config
        model.register_buffer("latent_means", torch.randn(config.latent_components, config.latent_dim)
                              if config.latent_prior == "mixture" else None)

    def sample(self, model: Any, n: int, generator: torch.Generator | None) -> Tensor:
        """``n`` draws on the model's device; seeded draws happen on the CPU so they match on every device."""
        device = torch.device("cpu") if generator is not None else model.device
        means = None if model.latent_means is None else model.latent_means.to(device)
        return sample_prior(n, self.config.latent_dim, means, self.config.latent_component_std, generator, device
                            ).to(model.device)
