"""Latent GANs: G maps a latent z (and, for conditional models, a class label or attribute vector) to a sample.

A batch is (real samples, labels or None); the fakes are G(z) for z from the latent prior, conditioned on the real
labels; D scores samples (with packing, packs of samples). Every technique of ``gan_lightning.techniques`` makes
sense here. Previews are G (its EMA copy where there is one) on a fixed latent batch, conditional models class by
row; evaluation samples are seeded latents; ``draw_samples`` serves ``gan-lightning sample``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from gan_lightning.errors import ConfigError, GanLightningError
from gan_lightning.latent import interpolation_grid
from gan_lightning.models.base import AdversarialConfig, AdversarialModule, Preview, eval_forward, seeded_randomness
from gan_lightning.techniques import LATENT_GAN_TECHNIQUES, LatentPrior
from gan_lightning.techniques.augmentation import AugmentationConfig
from gan_lightning.techniques.ema import EMAConfig
from gan_lightning.techniques.feature_matching import FeatureMatchingConfig
from gan_lightning.techniques.gradient_penalty import GradientPenaltyConfig
from gan_lightning.techniques.historical_averaging import HistoricalAveragingConfig
from gan_lightning.techniques.label_smoothing import LabelSmoothingConfig
from gan_lightning.techniques.latent_prior import LatentPriorConfig
from gan_lightning.techniques.minibatch_discrimination import MinibatchDiscriminationConfig
from gan_lightning.techniques.packing import PackingConfig
from gan_lightning.techniques.spectral_norm import SpectralNormConfig
from gan_lightning.techniques.virtual_batch_norm import VirtualBatchNormConfig
from gan_lightning.techniques.weight_clipping import WeightClippingConfig


# Bases in reverse: a dataclass lists the fields of its last base first, so the game's keys lead.
@dataclass
class LatentGANConfig(AugmentationConfig, EMAConfig, VirtualBatchNormConfig, HistoricalAveragingConfig,
                      FeatureMatchingConfig, GradientPenaltyConfig, WeightClippingConfig, SpectralNormConfig,
                      MinibatchDiscriminationConfig, LabelSmoothingConfig, PackingConfig, LatentPriorConfig,
                      AdversarialConfig):
    latent_dim: int = 100  # dimension of z


class LatentBatch(NamedTuple):
    """What a latent GAN trains on: real samples, and their labels (None for unconditional models)."""

    real: Tensor
    labels: Tensor | None


class LatentGAN(AdversarialModule):
    """Base of latent GANs: variants build G(z[, labels]) and D(x[, labels]) and may change the losses."""

    Config = LatentGANConfig
    family = "latent GANs: G(z[, label]) -> a sample"
    techniques = LATENT_GAN_TECHNIQUES
    conditional = False  # True: G and D receive class labels

    def __init__(self, config: DictConfig | dict[str, Any] | None = None, sample_shape: Any = None,
                 num_classes: int | None = None, experiment: dict[str, Any] | None = None,
                 label_names: list[str] | None = None, multi_label: bool = False, *, image_shape: Any = None,
                 **options: Any) -> None:
        """``num_classes``: classes of the data's labels, or attributes when ``multi_label`` (labels are then N x K
        multi-hot float vectors, e.g. CelebA attributes); ``label_names``: their names, for the sample CLI."""
        facts = {"num_classes": num_classes, "label_names": list(label_names) if label_names else None,
                 "multi_label": multi_label}
        super().__init__(config, sample_shape, experiment, image_shape=image_shape, facts=facts, **options)

    @classmethod
    def data_facts(cls, datamodule: Any) -> dict[str, Any]:
        return {**super().data_facts(datamodule), "num_classes": datamodule.num_classes,
                "label_names": datamodule.label_names, "multi_label": datamodule.multi_label}

    @classmethod
    def config_checks(cls, config: DictConfig) -> list[tuple[str, bool, str]]:
        return [("latent_dim", config.latent_dim >= 1, "an int >= 1"), *super().config_checks(config)]

    def init_data(self, num_classes: int | None, label_names: list[str] | None, multi_label: bool) -> None:
        if self.conditional and not num_classes:
            raise ConfigError(f"model.name: {self.registry_name} is conditional but the data has no class labels")
        self.num_classes = num_classes if self.conditional else None
        self.multi_label = multi_label and self.conditional
        self.label_names = list(label_names) if label_names and self.conditional else None
        # Multi-hot labels are drawn attribute by attribute with the data's frequencies (set at fit start from the
        # datamodule; a buffer, so evaluating a checkpoint draws them the same way). Attributes are drawn
        # independently: correlations between them (Male and Wearing_Lipstick) are not reproduced.
        self.register_buffer("label_prior", torch.full((num_classes,), 0.5) if self.multi_label else None)
        self.generator_ema: nn.Module | None = None  # set by the EMA technique
        self.adversarial_generator_loss = True  # False: feature matching alone is G's loss

    def on_fit_start(self) -> None:
        if self.multi_label and self.trainer.datamodule is not None:  # the data's attribute frequencies
            self.label_prior.copy_(torch.as_tensor(self.trainer.datamodule.label_frequencies(), dtype=torch.float32))

    # --- the batch and the players ------------------------------------------------------------------------------
    @property
    def d_input_shape(self) -> tuple[int, ...]:
        """What one D input looks like: a sample, or with packing m samples stacked along dim 0 (channels)."""
        shape = self.sample_shape
        for technique in self.active_techniques:
            shape = technique.d_input_shape(shape)
        return shape

    def prepare_batch(self, batch: Any) -> LatentBatch:
        """A tensor, an (images, labels) tuple or a dict with "image" (and "label")."""
        if isinstance(batch, dict):
            return LatentBatch(batch["image"], batch.get("label") if self.conditional else None)
        if isinstance(batch, (tuple, list)):
            return LatentBatch(batch[0], batch[1] if self.conditional and len(batch) > 1 else None)
        return LatentBatch(batch, None)

    def make_fakes(self, batch: LatentBatch) -> Tensor:
        """G(z) with z from the latent prior, conditioned on the real labels."""
        z = self.sample_latent(batch.real.shape[0])
        for technique in self.active_techniques:  # virtual batch norm's forward with its reference batch
            fakes = technique.generate(self, z, batch.labels)
            if fakes is not None:
                return fakes
        return self.generator(z, *self.label_args(batch.labels))

    def d_input(self, x: Tensor) -> Tensor:
        """Samples as D takes them: as they are, or packed."""
        for technique in self.active_techniques:
            x = technique.d_input(x)
        return x

    def discriminate(self, x: Tensor, labels: Tensor | None) -> Tensor:
        """One score per D input: per sample, or per pack of m samples."""
        return self.discriminator(self.d_input(x), *self.label_args(labels))

    def discriminator_features(self, x: Tensor, labels: Tensor | None) -> Tensor:
        """D's last hidden layer (feature matching), on the same inputs as ``discriminate``."""
        return self.discriminator.features(self.d_input(x), *self.label_args(labels))

    def critic_inputs(self, batch: LatentBatch, fakes: Tensor) -> tuple[Any, Tensor, Tensor]:
        """(critic, real inputs, fake inputs) for a gradient penalty: on the function D computes, packed inputs."""
        return (lambda x: self.discriminator(x, *self.label_args(batch.labels)), self.d_input(batch.real),
                self.d_input(fakes))

    def discriminator_loss(self, batch: LatentBatch, fakes: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        real_scores, fake_scores = self.discriminate(batch.real, batch.labels), self.discriminate(fakes, batch.labels)
        loss = self.d_loss_fn(real_scores, fake_scores)
        self.real_scores = (real_scores.detach(), batch.real.shape[0])
        return loss, {"d_real": self.score_summary(real_scores), "d_fake": self.score_summary(fake_scores)}

    def generator_loss(self, batch: LatentBatch, fakes: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        if not self.adversarial_generator_loss:
            return torch.zeros((), device=self.device), {}
        return self.g_loss_fn(self.discriminate(fakes, batch.labels)), {}

    # --- sampling ---------------------------------------------------------------------------------------------
    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n draws of the latent prior (model.latent_prior); seeded draws match on every device."""
        return self.technique(LatentPrior).sample(self, n, generator)

    def sample_labels(self, n: int, generator: torch.Generator | None = None) -> Tensor | None:
        if not self.conditional:
            return None
        if self.multi_label:
            draws = torch.rand(n, self.num_classes, generator=generator)
            return (draws < self.label_prior.cpu()).float().to(self.device)
        return torch.randint(0, self.num_classes, (n,), generator=generator).to(self.device)

    def fixed_inputs(self, n: int, nrow: int | None = None) -> tuple[Tensor, Tensor | None]:
        """The same latents (and labels) every time: grids at different steps are comparable."""
        generator = torch.Generator().manual_seed(self.config.sample_seed)
        return self.sample_latent(n, generator), self.fixed_labels(n, nrow)

    def fixed_labels(self, n: int, nrow: int | None = None) -> Tensor | None:
        """Cycling classes; with ``nrow``, class by row (row r of a grid of nrow columns shows class r). Multi-hot
        attributes: row r shows the attribute combination whose bits are r (attribute k present when bit k is set),
        so a grid of 2^K rows shows every combination of K attributes."""
        if not self.conditional:
            return None
        index = torch.arange(n) if nrow is None else torch.arange(n) // nrow
        if self.multi_label:
            bits = torch.arange(self.num_classes)
            return ((index[:, None] >> bits.clamp(max=62)) & 1).float().to(self.device)
        return (index % self.num_classes).to(self.device)

    def labels_for(self, n: int, label: int | Tensor | None, nrow: int) -> Tensor | None:
        """``n`` labels: all ``label`` (a class, or a multi-hot attribute vector), or (label None) class by row;
        None for unconditional models."""
        if label is None or not self.conditional:
            return self.fixed_labels(n, nrow)
        if isinstance(label, Tensor):
            return label.to(self.device, torch.float32).reshape(1, -1).expand(n, -1).clone()
        return torch.full((n,), label, dtype=torch.long, device=self.device)

    def label_args(self, labels: Tensor | None) -> tuple[Tensor, ...]:
        return (labels,) if self.conditional else ()

    @property
    def sampling_generator(self) -> nn.Module:
        """The EMA copy of G where there is one (smoother samples), else G itself."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    @torch.no_grad()
    def generate(self, z: Tensor, labels: Tensor | None = None, use_ema: bool = True, *, truncation: float = 1.0,
                 truncation_cutoff: int | None = None, noise: str | None = None) -> Tensor:
        """Samples in data space from G in eval mode (batchnorm uses its running statistics).

        ``truncation`` (psi), ``truncation_cutoff`` and ``noise`` ("const" | "random") are for generators with a
        mapping network and noise inputs (StyleGAN2, which overrides this); here they are refused in one line."""
        self.check_sampling_options(truncation, truncation_cutoff, noise)
        net = self.sampling_generator if use_ema else self.generator
        return eval_forward(net, z.to(self.device), *self.label_args(labels))

    def check_sampling_options(self, truncation: float = 1.0, truncation_cutoff: int | None = None,
                               noise: str | None = None) -> None:
        """One line (GanLightningError) for a sampling option this model cannot honour."""
        if truncation != 1.0 or truncation_cutoff is not None:
            raise GanLightningError(f"truncation: model {self.registry_name} tracks no average latent to truncate "
                                    "toward (only generators with a mapping network keep one, w_avg: stylegan2, "
                                    "cstylegan2)")
        if noise is not None:
            raise GanLightningError(f"noise: model {self.registry_name}'s generator has no noise inputs (stylegan2 "
                                    "and cstylegan2 have)")

    def interpolate(self, starts: Tensor, ends: Tensor, steps: int, labels: Tensor | None = None,
                    **sampling: Any) -> Tensor:
        """Row r walks from latent starts[r] to ends[r] (R x latent_dim each) in ``steps`` samples, spherically in Z
        (White 2016); ``labels``: one per sample (R * steps) or None; ``sampling``: ``generate``'s options."""
        return self.generate(interpolation_grid(starts, ends, steps), labels, **sampling)

    def projection_space(self, w_plus: bool = False) -> Any:
        """What ``gan-lightning project`` optimises: for a generator without a mapping network, its latent z."""
        from gan_lightning.projection import LatentSpace

        if w_plus:
            raise GanLightningError(f"--w-plus: model {self.registry_name} has no per-layer latents (W+ is a mapping "
                                    "network's space: stylegan2, cstylegan2); project into Z without it")
        return LatentSpace(self)

    # --- what the model shows -----------------------------------------------------------------------------------
    def preview(self, n: int, nrow: int, datamodule: Any = None) -> Preview:
        """G (EMA where there is one) on a fixed latent batch, conditional models class by row."""
        z, labels = self.fixed_inputs(n, nrow=nrow)
        return Preview(self.generate(z, labels), nrow)

    def eval_samples(self, n: int, batch_size: int, seed: int, datamodule: Any = None,
                     shard: tuple[int, int] = (0, 1)) -> Iterator[Tensor]:
        """``n`` samples from latents (and labels) drawn with ``seed``, in batches."""
        generator = torch.Generator().manual_seed(seed)
        rank, world = shard
        for index, start in enumerate(range(0, n, batch_size)):
            size = min(batch_size, n - start)
            z, labels = self.sample_latent(size, generator), self.sample_labels(size, generator)  # drawn on all ranks
            if index % world == rank:
                # seeded by the batch, not the rank: the same images on any number of ranks
                with seeded_randomness(hash((seed, index)) % 2**63, self.device):
                    images = self.generate(z, labels)
                yield images

    def draw_samples(self, n: int, seed: int, label: int | Tensor | None = None, nrow: int = 8) -> Tensor:
        """``n`` samples from latents drawn with ``seed``: of class ``label``, or (conditional models) class by
        row of ``nrow``."""
        z = self.sample_latent(n, torch.Generator().manual_seed(seed))
        with seeded_randomness(seed, self.device):
            return self.generate(z, self.labels_for(n, label, nrow))
