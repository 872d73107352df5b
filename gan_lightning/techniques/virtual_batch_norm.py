"""Virtual batch normalisation (Salimans et al. 2016, section 3.5): G's batchnorm layers normalise with the
statistics of a reference batch fixed at the start (``vbn_reference_z``, drawn from ``sample_seed + 1``) under the
current weights, so a sample does not depend on the others of its batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gan_lightning.errors import ConfigError
from gan_lightning.nets.layers import reference_batch, use_virtual_batch_norm
from gan_lightning.techniques.base import Technique


@dataclass
class VirtualBatchNormConfig:
    virtual_batch_norm: bool = False  # G's batch norm uses a fixed reference batch's statistics (Salimans et al. 2016)
    vbn_reference_size: int = 64  # size of the reference batch


class VirtualBatchNorm(Technique):
    Config = VirtualBatchNormConfig
    switch = "virtual_batch_norm"

    @classmethod
    def checks(cls, config: Any) -> list[tuple[str, bool, str]]:
        return [("vbn_reference_size", config.vbn_reference_size >= 1, "an int >= 1")]

    def setup(self, model: Any) -> None:
        if not use_virtual_batch_norm(model.generator):
            raise ConfigError(f"model.virtual_batch_norm: {model.registry_name}'s generator has no batchnorm "
                              "layers to make virtual (MLP nets: model.norm_g=batch)")
        size, generator = self.config.vbn_reference_size, torch.Generator().manual_seed(self.config.sample_seed + 1)
        model.register_buffer("vbn_reference_z", model.sample_latent(size, generator))
        labels = model.sample_labels(size, generator)
        model.register_buffer("vbn_reference_labels", labels if labels is not None else torch.zeros(0))
        with torch.no_grad():  # the reference batch is fixed now: record its statistics at init
            self.generate(model, model.vbn_reference_z[:1], None if labels is None else labels[:1])

    def generate(self, model: Any, z: Tensor, labels: Tensor | None) -> Tensor:
        """G(z) with the reference batch's statistics under the current weights."""
        ref_labels = model.vbn_reference_labels if model.conditional else None
        with reference_batch(model.generator):
            model.generator(model.vbn_reference_z, *model.label_args(ref_labels))
            return model.generator(z, *model.label_args(labels))
