"""The alternating D/G update loop every variant shares.

One training batch = ``n_critic`` bookkeeping aside, one discriminator update and (every ``n_critic``-th
batch) one generator update, all under manual optimization so that variants with several networks
(conditional GANs, CycleGAN) only describe their losses:

    fakes = make_fakes(real, labels)               # with a graph only when G updates on this batch
    D step: discriminator_loss(real, fakes.detach(), labels)
    G step: generator_loss(real, fakes, labels)    # the same fakes: one G forward per batch

Each step is toggle -> loss -> zero_grad -> manual_backward -> (clip) -> step -> untoggle, so precision
plugins (16-mixed GradScaler) and DDP see every backward. Lightning counts every ``optimizer.step()`` as a
global step; here exactly one step per batch is counted, so ``trainer.max_steps`` means training batches.
"""

from __future__ import annotations

import abc
import copy
import ctypes
import hashlib
import inspect
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import lightning as L
import numpy as np
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.utilities.model_helpers import is_overridden
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from torch.utils._pytree import tree_map

from gan_lightning.errors import ConfigError, GanLightningError, check_values
from gan_lightning.latent import sample_prior
from gan_lightning.loggers import publish_scalars
from gan_lightning.losses import LOSS_FAMILIES, feature_matching, gradient_penalty, historical_average
from gan_lightning.nets.layers import (
    HistoricalAverages,
    add_minibatch_discrimination,
    pack_samples,
    reference_batch,
    spectral_norm_all,
    use_virtual_batch_norm,
)

# Loss families whose D output is a logit, so that sigmoid(D) is D's probability of "real".
_LOGIT_LOSSES = {"minimax", "saturating", "non_saturating"}
# Families with a real-sample target that one-sided label smoothing can lower.
_SMOOTHABLE_LOSSES = _LOGIT_LOSSES | {"least_squares"}


@dataclass
class GANConfig:
    """Keys every model accepts; variants extend it with their network options and recipe defaults."""

    name: str = "?"
    latent_dim: int = 100
    # normal: z ~ N(0, I). mixture: z = mu_k + s * eps, k uniform over latent_components fixed means mu_k ~ N(0, I)
    # (drawn at init from the run's seed, checkpointed), s = latent_component_std. A mixture prior gives G
    # disjoint latent regions, so it can place disjoint modes without spending latent mass on the bridges between
    # them (Gurumurthy et al. 2017, DeLiGAN; Ben-Yosef & Weinshall 2018, GM-GAN). Use more components than the
    # data has modes: G learns which components go where.
    latent_prior: str = "normal"
    latent_components: int = 100
    latent_component_std: float = 0.02
    loss: str = "non_saturating"  # minimax (= saturating), non_saturating, wasserstein, hinge, least_squares
    n_critic: int = 1  # discriminator steps per generator step ("k" in Goodfellow et al.)
    optimizer: str = "adam"  # adam | rmsprop
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 0.0
    grad_clip_d: float | None = None  # max gradient norm per optimizer, null = off
    grad_clip_g: float | None = None
    lr_schedule: str = "constant"  # constant | linear_decay (to 0 at trainer.max_steps)
    lr_schedule_unit: str = "batches"  # batches | epochs: the unit of lr_decay_start and lr_decay_end
    lr_decay_start: int = 0  # batch (or epoch) at which linear decay begins
    lr_decay_end: int | None = None  # batch (or epoch) where the lr reaches 0; null = trainer.max_steps (max_epochs)
    ema_decay: float | None = None  # EMA copy of G for samples/metrics, e.g. 0.999; null = off
    ema_start: int = 0  # batches before the EMA starts averaging (it copies G until then)
    real_label: float = 1.0  # < 1: one-sided label smoothing (Salimans et al. 2016)
    sample_seed: int = 1234  # seed of the fixed latent batch rendered into sample grids
    # --- options every variant accepts (README "Techniques" says when to use each) ----------------------
    weight_clip: float | None = None  # WGAN: clamp every critic weight to [-c, c] after each D step
    gradient_penalty: float = 0.0  # WGAN-GP lambda (10 in the paper); 0 = off. Needs a D without batchnorm
    spectral_norm_d: bool = False  # SNGAN: every Conv/Linear weight of D divided by its spectral norm
    pack: int = 1  # PacGAN: D judges m samples at once (m = 1: off); the batch size must be a multiple of m
    minibatch_kernels: int = 0  # minibatch discrimination: B kernels between D's features and head; 0 = off
    minibatch_kernel_dim: int = 5  # C, the dimension of each kernel
    feature_matching: float = 0.0  # weight of ||mean f(x) - mean f(G(z))||^2 (f = D's last hidden layer) in G's loss
    feature_matching_only: bool = False  # G minimises feature matching alone (Salimans et al.'s form)
    historical_averaging: float = 0.0  # weight of ||theta - mean of past theta||^2 in both players' losses
    virtual_batch_norm: bool = False  # G's batchnorm layers normalise with a reference batch fixed at start
    vbn_reference_size: int = 64  # size of that reference batch
    # --- divergence guard -----------------------------------------------------------------------------
    # A step whose loss or gradients hold NaN/inf is skipped (weights and optimizer state untouched; counted as
    # train/skipped_steps); this many consecutive batches with a skipped step stop the run with one line.
    max_nonfinite_batches: int = 20
    # --- speed, not recipe (README "Scaling" has the measured effect of each; resume may change them) --------
    channels_last: bool = False  # NHWC memory format for G, D and image batches (tensor cores on recent GPUs)
    compile: bool = False  # torch.compile G's and D's forwards in place (state-dict names unchanged)


# The options every variant accepts, at their "off" values: a variant whose networks cannot take some of them names
# them in ``unsupported_options`` and any other value is refused in one line.
_OPTIONS_OFF = {"pack": 1, "gradient_penalty": 0.0, "minibatch_kernels": 0, "feature_matching": 0.0,
                "feature_matching_only": False, "virtual_batch_norm": False, "ema_decay": None, "real_label": 1.0}
_OPTIMIZERS = ("adam", "rmsprop")
_SCHEDULES = ("constant", "linear_decay")
_SCHEDULE_UNITS = ("batches", "epochs")
_LATENT_PRIORS = ("normal", "mixture")


class Preview(NamedTuple):
    """A grid's content: ``images`` (N x C x H x W in [-1, 1], or N x 2 points) laid out ``nrow`` per row, with an
    optional name per row (e.g. input, translation, reconstruction)."""

    images: Tensor
    nrow: int
    row_names: tuple[str, ...] = ()


def eval_forward(net: nn.Module, *inputs: Tensor) -> Tensor:
    """``net(*inputs)`` in eval mode (batchnorm on its running statistics, no dropout), then back to its mode."""
    was_training = net.training
    net.eval()
    try:
        return net(*inputs)
    finally:
        net.train(was_training)


class DivergenceError(GanLightningError):
    """Too many consecutive batches with non-finite losses or gradients."""


class RanksOutOfSyncError(GanLightningError):
    """DDP ranks ended a batch with different weights."""


def _no_closure() -> None:
    return None


def _current_scale(scaler: Any) -> float | Tensor:
    """The GradScaler's scale without a host read (its device tensor once it has one), 1.0 without a scaler."""
    if scaler is None:
        return 1.0
    return scaler._scale if scaler._scale is not None else scaler.get_scale()


def _skips_on_device(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer`` takes a ``found_inf`` tensor and skips the update on the device (fused Adam)."""
    return bool(getattr(optimizer, "_step_supports_amp_scaling", False) and optimizer.defaults.get("fused"))


def skip_failing_nvml_check() -> bool:
    """Drop ``PYTORCH_NVML_BASED_CUDA_CHECK`` where NVML cannot be loaded; True if it was dropped.

    Importing Lightning sets it, so that asking whether CUDA is available does not initialise CUDA (fork safety).
    ``torch.optim.Optimizer.step`` asks on every step, and on a machine whose torch has CUDA but which has no NVML
    library (a CPU machine with the default pip wheels) the NVML route tries to load the library on every call, fails,
    and falls back to the CUDA runtime's own count anyway: 57 us a call measured on a 2-core CPU machine, against 1 us
    without the variable, two calls a batch. Without NVML the variable only adds that cost, so it goes. Where NVML
    loads it stays: a GPU run initialises CUDA and torch then caches the count."""
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") != "1" or not torch.backends.cuda.is_built():
        return False
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]
        return True
    return False


def _may_have_stepped(verdict: tuple[bool, bool] | Tensor) -> bool:
    """False only when the update is known (on the host) to have been skipped by the guard; a deferred verdict is
    not read yet: what follows a step (weight clipping, EMA, historical averages) runs, on unchanged weights if the
    device skipped it."""
    return isinstance(verdict, Tensor) or not verdict[0]


class GANModule(L.LightningModule, abc.ABC):
    """Base class: subclasses build their networks and may override the loss hooks."""

    Config = GANConfig
    registry_name = "?"
    conditional = False  # True: G and D receive class labels
    unsupported_options: tuple[str, ...] = ()  # generic options (keys of _OPTIONS_OFF) this variant's nets cannot take
    unsupported_reason = ""  # why, for the error

    def __init__(self, config: DictConfig | dict[str, Any], sample_shape: tuple[int, ...] | list[int],
                 num_classes: int | None = None, experiment: dict[str, Any] | None = None,
                 label_names: list[str] | None = None, multi_label: bool = False):
        """``num_classes``: classes of the data's labels, or attributes when ``multi_label`` (labels are then N x K
        multi-hot float vectors, e.g. CelebA attributes); ``label_names``: their names, for the sample CLI."""
        super().__init__()
        config = OmegaConf.merge(OmegaConf.structured(self.Config), config)
        self.check_config(config)
        self.save_hyperparameters({"config": OmegaConf.to_container(config), "sample_shape": list(sample_shape),
                                   "num_classes": num_classes, "experiment": experiment,
                                   "label_names": list(label_names) if label_names else None,
                                   "multi_label": multi_label})
        # The validated dataclass, not the DictConfig: a DictConfig attribute read costs ~15 us, and the loop reads
        # about twenty settings per batch.
        self.config = OmegaConf.to_object(config)
        self.sample_shape = tuple(sample_shape)
        if self.conditional and not num_classes:
            raise ConfigError(f"model.name: {self.registry_name} is conditional but the data has no class labels")
        self.num_classes = num_classes if self.conditional else None
        self.multi_label = multi_label and self.conditional
        self.label_names = list(label_names) if label_names and self.conditional else None
        # Multi-hot labels are drawn attribute by attribute with the data's frequencies (set at fit start from the
        # datamodule; a buffer, so evaluating a checkpoint draws them the same way). Attributes are drawn
        # independently: correlations between them (Male and Wearing_Lipstick) are not reproduced.
        self.register_buffer("label_prior", torch.full((num_classes,), 0.5) if self.multi_label else None)
        self.automatic_optimization = False
        # A buffer (None for the normal prior), so the mixture's means travel with the weights in checkpoints.
        self.register_buffer("latent_means", torch.randn(config.latent_components, config.latent_dim)
                             if config.latent_prior == "mixture" else None)
        self.d_loss_fn, self.g_loss_fn = LOSS_FAMILIES[config.loss]
        try:
            self.generator = self.build_generator()
            self.discriminator = self.build_discriminator()
        except ValueError as error:  # e.g. an image size the architecture cannot produce
            raise ConfigError(f"model.name: {self.registry_name} cannot model samples of shape "
                              f"{self.sample_shape}: {error}") from None
        self._apply_options()
        self.generator_ema = None
        if config.ema_decay is not None:
            # Left in train mode like the rest of the module (Lightning warns otherwise); generate() uses eval.
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
        if config.channels_last and len(self.sample_shape) == 3:
            self.to(memory_format=torch.channels_last)  # 4-D weights only; .to(device) later keeps the format
        if config.compile:
            for net in (self.generator, self.discriminator):
                net.compile()
        # A buffer, so it is checkpointed with the weights and resume continues the D/G rhythm.
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.long))
        # Its value on the host, read from the buffer once per fit: reading a GPU buffer every batch would wait for
        # the device each time and stall the queue of kernels.
        self._batch_count: int | None = None
        self._rng_to_restore: dict[str, Any] | None = None
        self._counted_step_taken = False
        # Divergence guard state (checkpointed in on_save_checkpoint, not in the state dict, so checkpoints
        # written before the guard existed still load).
        self.skipped_steps = 0
        self.nonfinite_streak = 0
        self.amp_skipped_steps = 0
        self._pending_clip: float | None = None
        self._pending_loss: Tensor | None = None
        # The verdict on the update in flight, set in on_before_optimizer_step: (guard skipped, scaler skipped) as host
        # bools, or as a device tensor of two 0/1 values when the update can be skipped on the device (deferred).
        self._verdict: tuple[bool, bool] | Tensor = (False, False)
        self._step_logs: dict[str, Tensor] = {}  # the last batch's scalars, until on_train_batch_end logs them
        self._direct_updates = False  # set per fit by _wrappers_are_idle
        # The floating-point buffers, listed once per fit: walking the module tree every batch costs a small model
        # about 60 us a batch. Training updates buffers in place, so the list stays valid for the fit.
        self._guarded_buffers: list[Tensor] | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets ``_current_fx_name`` (and the loop its own flags) around every hook, about 70 times a batch;
        # nn.Module.__setattr__ checks each against its parameter, module and buffer tables (~2 us). An attribute
        # already in the instance dict holding neither a tensor nor a module is in none of those tables, so a plain
        # object assignment does the same.
        if name in self.__dict__ and not isinstance(value, (Tensor, nn.Module)):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @property
    def d_input_shape(self) -> tuple[int, ...]:
        """What one D input looks like: a sample, or with packing m samples stacked along dim 0 (channels)."""
        return (self.sample_shape[0] * self.config.pack, *self.sample_shape[1:])

    def _apply_options(self) -> None:
        """Network surgery for the generic options, after the variant built its nets."""
        config = self.config
        if config.minibatch_kernels > 0:
            self.discriminator = add_minibatch_discrimination(self.discriminator, config.minibatch_kernels,
                                                              config.minibatch_kernel_dim)
        if config.spectral_norm_d:
            spectral_norm_all(self.discriminator)
        if config.gradient_penalty > 0 and any(
                isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.discriminator.modules()):
            raise ConfigError("model.gradient_penalty: the critic has batchnorm, which makes the penalty "
                              "per batch, not per sample (Gulrajani et al.); use a critic without it "
                              "(dcgan-style nets: model.d_norm=layer or none)")
        if (config.feature_matching > 0 or config.feature_matching_only) and not hasattr(self.discriminator,
                                                                                         "features"):
            raise ConfigError(f"model.feature_matching: {self.registry_name}'s discriminator has no features()")
        self.historical = None
        if config.historical_averaging > 0:
            self.historical = HistoricalAverages({"d": self.discriminator_parameters(),
                                                  "g": self.generator_parameters()})
        if config.virtual_batch_norm:
            if not use_virtual_batch_norm(self.generator):
                raise ConfigError(f"model.virtual_batch_norm: {self.registry_name}'s generator has no batchnorm "
                                  "layers to make virtual (MLP nets: model.norm_g=batch)")
            generator = torch.Generator().manual_seed(self.config.sample_seed + 1)
            self.register_buffer("vbn_reference_z", self.sample_latent(config.vbn_reference_size, generator))
            labels = self.sample_labels(config.vbn_reference_size, generator)
            self.register_buffer("vbn_reference_labels", labels if labels is not None else torch.zeros(0))
            with torch.no_grad():  # the reference batch is fixed now: record its statistics at init
                self._generate_with_reference(self.vbn_reference_z[:1], None if labels is None else labels[:1])

    def _generate_with_reference(self, z: Tensor, labels: Tensor | None) -> Tensor:
        """G(z) with virtual batch norm statistics from the fixed reference batch under the current weights."""
        ref_labels = self.vbn_reference_labels if self.conditional else None
        with reference_batch(self.generator):
            self.generator(self.vbn_reference_z, *self._label_args(ref_labels))
            return self.generator(z, *self._label_args(labels))

    # --- what variants provide ----------------------------------------------------------------------
    @abc.abstractmethod
    def build_generator(self) -> nn.Module:
        """G(z[, labels]) -> samples in data space."""

    @abc.abstractmethod
    def build_discriminator(self) -> nn.Module:
        """D(x[, labels]) -> one score per input (a sample; with model.pack, a pack of m samples)."""

    @classmethod
    def check_config(cls, config: DictConfig) -> None:
        """Value checks beyond types (omegaconf did those); raise ConfigError naming the key."""
        checks = [
            ("loss", config.loss in LOSS_FAMILIES, ", ".join(LOSS_FAMILIES)),
            ("optimizer", config.optimizer in _OPTIMIZERS, ", ".join(_OPTIMIZERS)),
            ("lr_schedule", config.lr_schedule in _SCHEDULES, ", ".join(_SCHEDULES)),
            ("lr_schedule_unit", config.lr_schedule_unit in _SCHEDULE_UNITS, ", ".join(_SCHEDULE_UNITS)),
            ("n_critic", config.n_critic >= 1, "an int >= 1"),
            ("latent_dim", config.latent_dim >= 1, "an int >= 1"),
            ("latent_prior", config.latent_prior in _LATENT_PRIORS, ", ".join(_LATENT_PRIORS)),
            ("latent_components", config.latent_components >= 1, "an int >= 1"),
            ("latent_component_std", config.latent_component_std > 0, "a float > 0"),
            ("ema_decay", config.ema_decay is None or 0.0 <= config.ema_decay < 1.0, "null or a float in [0, 1)"),
            ("real_label", 0.0 < config.real_label <= 1.0, "a float in (0, 1]"),
            ("weight_clip", config.weight_clip is None or config.weight_clip > 0, "null or a float > 0"),
            ("gradient_penalty", config.gradient_penalty >= 0, "a float >= 0"),
            ("pack", config.pack >= 1, "an int >= 1"),
            ("minibatch_kernels", config.minibatch_kernels >= 0, "an int >= 0"),
            ("minibatch_kernel_dim", config.minibatch_kernel_dim >= 1, "an int >= 1"),
            ("feature_matching", config.feature_matching >= 0, "a float >= 0"),
            ("historical_averaging", config.historical_averaging >= 0, "a float >= 0"),
            ("vbn_reference_size", config.vbn_reference_size >= 1, "an int >= 1"),
            ("lr_g", config.lr_g > 0, "a float > 0"),
            ("lr_d", config.lr_d > 0, "a float > 0"),
            ("beta1", 0.0 <= config.beta1 < 1.0, "a float in [0, 1)"),
            ("beta2", 0.0 <= config.beta2 < 1.0, "a float in [0, 1)"),
            ("weight_decay", config.weight_decay >= 0, "a float >= 0"),
            ("grad_clip_d", config.grad_clip_d is None or config.grad_clip_d > 0, "null or a float > 0"),
            ("grad_clip_g", config.grad_clip_g is None or config.grad_clip_g > 0, "null or a float > 0"),
            ("lr_decay_start", config.lr_decay_start >= 0, "an int >= 0"),
            ("lr_decay_end", config.lr_decay_end is None or config.lr_decay_end > config.lr_decay_start,
             "null or an int > model.lr_decay_start"),
            ("ema_start", config.ema_start >= 0, "an int >= 0"),
            ("max_nonfinite_batches", config.max_nonfinite_batches >= 1, "an int >= 1"),
        ]
        check_values("model", config, checks)
        if config.compile and config.channels_last:
            raise ConfigError("model.compile: not together with model.channels_last (torch.compile's stride "
                              "assertions fail on NHWC DCGAN nets, measured with torch 2.11); choose one")
        if config.real_label != 1.0 and config.loss not in _SMOOTHABLE_LOSSES:
            raise ConfigError(f"model.real_label: label smoothing needs a loss with a real target "
                              f"({', '.join(sorted(_SMOOTHABLE_LOSSES))}), not {config.loss}")
        if config.pack > 1 and cls.conditional:
            raise ConfigError(f"model.pack: packing is for unconditional models; {cls.registry_name} is conditional")
        refused = [key for key in cls.unsupported_options if config[key] != _OPTIONS_OFF[key]]
        if refused:
            raise ConfigError(f"model.{refused[0]}: not available for {cls.registry_name} ({cls.unsupported_reason})")

    def generator_parameters(self) -> list[nn.Parameter]:
        return list(self.generator.parameters())

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return list(self.discriminator.parameters())

    def split_batch(self, batch: Any) -> tuple[Tensor, Tensor | None]:
        """(real samples, labels or None) from whatever the datamodule yields: a tensor, an (images, labels) tuple
        or a dict with "image" (and "label"); models trained on other named tensors (translation's "A"/"B")
        override this."""
        if isinstance(batch, dict):
            return batch["image"], (batch.get("label") if self.conditional else None)
        if isinstance(batch, (tuple, list)):
            return batch[0], (batch[1] if self.conditional and len(batch) > 1 else None)
        return batch, None

    def make_fakes(self, real: Tensor, labels: Tensor | None) -> Any:
        """The generated side of the batch: G(z) with z from the latent prior (``sample_latent``), conditioned on
        the real labels."""
        z = self.sample_latent(real.shape[0])
        if self.config.virtual_batch_norm:
            return self._generate_with_reference(z, labels)
        return self.generator(z, *self._label_args(labels))

    def pack(self, x: Tensor) -> Tensor:
        """PacGAN: (N, ...) -> (N/m, m*C, ...); the identity for pack = 1."""
        return pack_samples(x, self.config.pack) if self.config.pack > 1 else x

    def discriminate(self, x: Tensor, labels: Tensor | None) -> Tensor:
        """One score per D input: per sample, or per pack of m samples."""
        return self.discriminator(self.pack(x), *self._label_args(labels))

    def discriminator_features(self, x: Tensor, labels: Tensor | None) -> Tensor:
        """D's last hidden layer (feature matching), on the same (packed) inputs as ``discriminate``."""
        return self.discriminator.features(self.pack(x), *self._label_args(labels))

    def discriminator_loss(self, real: Tensor, fakes: Any, labels: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        """``fakes`` arrive detached: nothing here can reach G's weights."""
        real_scores, fake_scores = self.discriminate(real, labels), self.discriminate(fakes, labels)
        if self.config.loss in _SMOOTHABLE_LOSSES:
            loss = self.d_loss_fn(real_scores, fake_scores, real_target=self.config.real_label)
        else:
            loss = self.d_loss_fn(real_scores, fake_scores)
        logs = {"d_real": self._score_summary(real_scores), "d_fake": self._score_summary(fake_scores)}
        if self.config.gradient_penalty > 0:
            # Interpolates between packed real and packed fake inputs: the penalty is on the function D computes.
            scaler = self._grad_scaler()  # 16-mixed: the AMP recipe scales the critic outputs into autograd.grad
            penalty = gradient_penalty(lambda x: self.discriminator(x, *self._label_args(labels)),
                                       self.pack(real), self.pack(fakes),
                                       output_scale=_current_scale(scaler))
            loss = loss + self.config.gradient_penalty * penalty
            logs["gp"] = penalty
        if self.historical is not None:
            average = historical_average(self.discriminator_parameters(), self.historical.averages("d"))
            loss = loss + self.config.historical_averaging * average
            logs["hist_avg_d"] = average
        return loss, {"d_loss": loss, **logs}

    def generator_loss(self, real: Tensor, fakes: Any, labels: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        config, logs = self.config, {}
        if config.feature_matching_only:
            loss = torch.zeros((), device=self.device)
        else:
            loss = self.g_loss_fn(self.discriminate(fakes, labels))
        if config.feature_matching > 0 or config.feature_matching_only:
            with torch.no_grad():
                real_features = self.discriminator_features(real, labels)
            matching = feature_matching(real_features, self.discriminator_features(fakes, labels))
            loss = loss + (1.0 if config.feature_matching_only else config.feature_matching) * matching
            logs["feature_matching"] = matching
        if self.historical is not None:
            average = historical_average(self.generator_parameters(), self.historical.averages("g"))
            loss = loss + config.historical_averaging * average
            logs["hist_avg_g"] = average
        return loss, {"g_loss": loss, **logs}

    def after_discriminator_step(self) -> None:
        """Called after every D update: WGAN weight clipping, the running average of D's past weights."""
        if self.config.weight_clip is not None:
            with torch.no_grad():
                for param in self.discriminator_parameters():
                    param.clamp_(-self.config.weight_clip, self.config.weight_clip)
        if self.historical is not None:
            self.historical.update("d", self.discriminator_parameters())

    def after_generator_step(self) -> None:
        if self.historical is not None:
            self.historical.update("g", self.generator_parameters())

    # --- what the model shows: previews, evaluation samples, drawn samples -------------------------------
    # Callbacks, `evaluate` and `sample` go through these three hooks only, so a model that is not latent-to-
    # sample (image translation) says what its previews and evaluation samples are by overriding them.
    latent_tools = True  # the sample CLI's --interpolate / --arithmetic apply (a latent space exists)

    def preview(self, n: int, nrow: int, datamodule: Any = None) -> Preview:
        """What a sample grid shows, the same inputs every call so grids over training compare: G (EMA where there
        is one) on a fixed latent batch, conditional models class by row."""
        z, labels = self.fixed_inputs(n, nrow=nrow)
        return Preview(self.generate(z, labels), nrow)

    def eval_samples(self, n: int, batch_size: int, seed: int, datamodule: Any = None,
                     shard: tuple[int, int] = (0, 1)) -> Iterator[Tensor]:
        """What metrics score: ``n`` samples in data space, in batches, reproducible from ``seed``. With ``shard`` =
        (rank, world size), only batches rank, rank + world, ... of that same sequence (DDP evaluation)."""
        generator = torch.Generator().manual_seed(seed)
        rank, world = shard
        for index, start in enumerate(range(0, n, batch_size)):
            size = min(batch_size, n - start)
            z, labels = self.sample_latent(size, generator), self.sample_labels(size, generator)  # drawn on all ranks
            if index % world == rank:
                yield self.generate(z, labels)

    def draw_samples(self, n: int, seed: int, label: int | None = None, nrow: int = 8) -> Tensor:
        """``n`` samples from latents drawn with ``seed``: of class ``label``, or (conditional models) class by
        row of ``nrow``."""
        z = self.sample_latent(n, torch.Generator().manual_seed(seed))
        return self.generate(z, self.labels_for(n, label, nrow))

    def labels_for(self, n: int, label: int | Tensor | None, nrow: int) -> Tensor | None:
        """``n`` labels: all ``label`` (a class, or a multi-hot attribute vector), or (label None) class by row;
        None for unconditional models."""
        if label is None or not self.conditional:
            return self.fixed_labels(n, nrow)
        if isinstance(label, Tensor):
            return label.to(self.device, torch.float32).reshape(1, -1).expand(n, -1).clone()
        return torch.full((n,), label, dtype=torch.long, device=self.device)

    # --- sampling -----------------------------------------------------------------------------------
    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n draws of the latent prior (model.latent_prior); seeded draws happen on the CPU so they match on
        every device."""
        device = torch.device("cpu") if generator is not None else self.device
        means = None if self.latent_means is None else self.latent_means.to(device)
        return sample_prior(n, self.config.latent_dim, means, self.config.latent_component_std, generator, device
                            ).to(self.device)

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

    def on_fit_start(self) -> None:
        skip_failing_nvml_check()
        if self.multi_label and self.trainer.datamodule is not None:  # the data's attribute frequencies
            self.label_prior.copy_(torch.as_tensor(self.trainer.datamodule.label_frequencies(), dtype=torch.float32))

    @property
    def sampling_generator(self) -> nn.Module:
        """The EMA copy of G where there is one (smoother samples), else G itself."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    @torch.no_grad()
    def generate(self, z: Tensor, labels: Tensor | None = None, use_ema: bool = True) -> Tensor:
        """Samples in data space from G in eval mode (batchnorm uses its running statistics)."""
        net = self.sampling_generator if use_ema else self.generator
        return eval_forward(net, z.to(self.device), *self._label_args(labels))

    def _label_args(self, labels: Tensor | None) -> tuple[Tensor, ...]:
        return (labels,) if self.conditional else ()

    def _score_summary(self, scores: Tensor) -> Tensor:
        """Mean D output: a probability of "real" for logit losses, the raw score otherwise."""
        scores = scores.detach().float()
        return torch.sigmoid(scores).mean() if self.config.loss in _LOGIT_LOSSES else scores.mean()

    # --- the alternating loop -----------------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int) -> None:
        real, labels = self.split_batch(batch)
        if self.config.channels_last and real.dim() == 4:
            real = real.contiguous(memory_format=torch.channels_last)
        opt_d, opt_g = self.optimizers()
        self._counted_step_taken = False
        buffers = self._buffer_snapshot()
        if self._batch_count is None:
            self._batch_count = int(self.batches_seen)
        generator_turn = (self._batch_count + 1) % self.config.n_critic == 0
        with torch.set_grad_enabled(generator_turn):  # no G graph on critic-only batches
            fakes = self.make_fakes(real, labels)
        detached = tree_map(lambda t: t.detach() if isinstance(t, Tensor) else t, fakes)
        logs, d_verdict = self._optimize(opt_d, lambda: self.discriminator_loss(real, detached, labels),
                                         self.config.grad_clip_d)
        verdicts = [d_verdict]
        if _may_have_stepped(d_verdict):
            self.after_discriminator_step()
        if generator_turn:
            g_logs, g_verdict = self._optimize(opt_g, lambda: self.generator_loss(real, fakes, labels),
                                               self.config.grad_clip_g)
            logs.update(g_logs)
            verdicts.append(g_verdict)
            if _may_have_stepped(g_verdict):
                self.after_generator_step()
                self.update_ema()
        self._guard_batch(self._count_skips(verdicts), buffers)
        self.batches_seen.add_(1)  # in place: no buffer re-registration through nn.Module.__setattr__
        self._batch_count += 1
        for scheduler in self._schedulers():
            scheduler.step()
        self._step_logs = {k: v.detach() for k, v in logs.items()}
        # Every batch, as tensors (no device read): callbacks (ModelCheckpoint/EarlyStopping on train/*) look here.
        self.trainer.callback_metrics.update({f"train/{k}": v for k, v in self._step_logs.items()})

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """This batch's ``train/*`` scalars to the loggers (and d_loss / g_loss to the progress bar) every
        ``trainer.log_every_n_steps`` batches and at a stop, as Lightning's ``self.log`` would, but without its
        per-scalar bookkeeping (about 0.8 ms a scalar on a CPU: a quarter of a small model's batch) and with one
        device sync per logged batch."""
        logs, self._step_logs = self._step_logs, {}
        trainer = self.trainer
        every = trainer.log_every_n_steps
        if not logs or every == 0 or (trainer.global_step % every and not trainer.should_stop):
            return
        numbers = dict(zip(logs, torch.stack([v.float().reshape(()) for v in logs.values()]).tolist(), strict=True))
        numbers["skipped_steps"] = float(self.skipped_steps)
        if self._grad_scaler() is not None:
            numbers["amp_skipped"] = float(self.amp_skipped_steps)
        publish_scalars(trainer, {f"train/{k}": v for k, v in numbers.items()})
        trainer.progress_bar_metrics.update({k: numbers[k] for k in ("d_loss", "g_loss") if k in numbers})

    def _optimize(self, optimizer: LightningOptimizer, compute_loss, clip: float | None
                  ) -> tuple[dict[str, Tensor], tuple[bool, bool] | Tensor]:
        """One update; returns the logs and the verdict on it (see ``_verdict``)."""
        self.toggle_optimizer(optimizer)
        loss, logs = compute_loss()
        optimizer.zero_grad(set_to_none=True)
        if self._direct_updates:
            loss.backward()
        else:
            self.manual_backward(loss)
        # Checked and clipped in on_before_optimizer_step: the precision plugin calls it after unscaling (16-mixed),
        # so the bound and the check see the true gradients.
        self._pending_loss, self._pending_clip = loss.detach(), clip
        scaler = self._grad_scaler()
        scale_before = scaler._scale.clone() if scaler is not None else None  # exists: backward scaled the loss
        self._step(optimizer)
        if scaler is not None:  # the scaler lowers its scale when it skips an update (overflow: expected under fp16)
            lowered = scaler._scale < scale_before  # on the device: read with the verdict
            if isinstance(self._verdict, Tensor):
                self._verdict[1] = lowered.float().sum() * (1 - self._verdict[0])
            elif not self._verdict[0]:
                self._verdict = (False, bool(lowered))
        elif _skips_on_device(optimizer.optimizer):  # our found_inf, for this update only (GradScaler removes its own)
            del optimizer.optimizer.found_inf, optimizer.optimizer.grad_scale
        self.untoggle_optimizer(optimizer)
        return logs, self._verdict

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Between backward (and unscaling) and the update: the divergence check, then gradient clipping.

        An optimizer that can skip an update on the device (fused Adam on a GPU, through the ``found_inf`` flag
        GradScaler also uses) gets the verdict as a device tensor, read on the host once per batch: a host read per
        update would leave the GPU idle while the CPU queues the optimizer step. Otherwise the verdict is read here
        and a bad update's gradients are dropped (torch optimizers leave parameters without gradients untouched)."""
        loss, self._pending_loss = self._pending_loss, None
        if loss is None:  # a step not taken through _optimize
            return
        scaler = self._grad_scaler()
        checked = [loss.float().reshape(1).clone()]  # a copy: the check below writes what it checks
        if scaler is None:  # under a GradScaler, non-finite gradients are overflow it handles (skip, lower the scale)
            checked += [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        # GradScaler's own check: one pass over all the tensors in C++, setting ``bad`` to 1 on any NaN or inf, and an
        # "unscale" by 1 that leaves them bit for bit as they were. Per-tensor norms (a dispatch per gradient) cost
        # more: 0.36 against 0.21 ms a batch for the toy MLPs of benchmarks/scaling.py, 0.49 against 0.35 ms for
        # DCGAN-MNIST, timed inside the training loop on a 2-core CPU.
        bad = torch.zeros((), device=loss.device)
        torch._amp_foreach_non_finite_check_and_unscale_(checked, bad, torch.ones((), device=loss.device))
        if _skips_on_device(optimizer):
            if scaler is None:
                optimizer.found_inf, optimizer.grad_scale = bad, None  # 0-dim, as GradScaler makes it
            # (Under a scaler a non-finite loss makes non-finite gradients: the scaler's own found_inf skips it.)
            self._verdict = torch.stack([bad, torch.zeros_like(bad)])
        else:
            self._verdict = (bool(bad), False)  # one device sync
            if self._verdict[0]:
                optimizer.zero_grad(set_to_none=True)
                return
        if self._pending_clip is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self._pending_clip, gradient_clip_algorithm="norm")

    def _count_skips(self, verdicts: list[tuple[bool, bool] | Tensor]) -> bool:
        """Count the batch's skipped updates (one host read for the deferred verdicts); True if none was skipped by
        the guard."""
        deferred = [verdict for verdict in verdicts if isinstance(verdict, Tensor)]
        values = iter(torch.stack(deferred).tolist() if deferred else [])
        batch_ok = True
        for verdict in verdicts:
            guard, amp = next(values) if isinstance(verdict, Tensor) else verdict
            self.skipped_steps += bool(guard)
            self.amp_skipped_steps += bool(amp)
            batch_ok = batch_ok and not guard
        return batch_ok

    def _floating_buffers(self) -> list[Tensor]:
        return [buffer.detach() for buffer in self.buffers() if buffer.is_floating_point()]

    def _buffer_snapshot(self) -> list[tuple[Tensor, Tensor]]:
        """Copies of the floating-point buffers (batchnorm statistics...) as they were before this batch: a NaN batch
        poisons them in the forward pass, before its loss can be checked."""
        buffers = self._guarded_buffers if self._guarded_buffers is not None else self._floating_buffers()
        return list(zip(buffers, torch._foreach_mul(buffers, 1.0), strict=True)) if buffers else []  # one fused copy

    def _guard_batch(self, batch_ok: bool, buffers: list[tuple[Tensor, Tensor]]) -> None:
        if batch_ok:
            self.nonfinite_streak = 0
            return
        self.nonfinite_streak += 1
        with torch.no_grad():
            for buffer, saved in buffers:
                if not bool(torch.isfinite(buffer).all()):
                    buffer.copy_(saved)
        if self.nonfinite_streak >= self.config.max_nonfinite_batches:
            limit, batch = self.config.max_nonfinite_batches, self._batch_count + 1
            raise DivergenceError(
                f"training diverged: {self.nonfinite_streak} consecutive batches (to batch {batch}) had non-finite "
                f"losses or gradients (model.max_nonfinite_batches={limit}); stopped without saving: "
                "checkpoints/last.ckpt, if any, keeps the last periodic state")

    def _grad_scaler(self) -> Any:
        """The 16-mixed GradScaler, or None (32-bit, bf16-mixed, or no trainer)."""
        trainer = self._trainer
        return getattr(trainer.precision_plugin, "scaler", None) if trainer is not None else None

    def _step(self, optimizer: LightningOptimizer) -> None:
        """Step ``optimizer``; only the batch's first step advances Lightning's global step counter."""
        self._verdict = (False, False)
        counted = not self._counted_step_taken
        if self._direct_updates:  # what Lightning's path would do, without its wrappers (see _wrappers_are_idle)
            self.on_before_optimizer_step(optimizer.optimizer)
            if counted:
                optimizer._on_before_step()  # the manual loop's step counter: trainer.global_step
            optimizer.optimizer.step()
            if counted:
                optimizer._on_after_step()
        elif counted:
            optimizer.step()
        else:  # the same precision-plugin/strategy path as LightningOptimizer.step, minus the counter
            self.trainer.strategy.optimizer_step(optimizer.optimizer, _no_closure, model=self)
        self._counted_step_taken = True

    @torch.no_grad()
    def update_ema(self) -> None:
        if self.generator_ema is None:
            return
        decay = self.config.ema_decay if self._batch_count >= self.config.ema_start else 0.0
        for ema_param, param in zip(self.generator_ema.parameters(), self.generator.parameters(), strict=True):
            ema_param.lerp_(param.detach(), 1.0 - decay)
        for ema_buffer, buffer in zip(self.generator_ema.buffers(), self.generator.buffers(), strict=True):
            ema_buffer.copy_(buffer)  # batchnorm statistics are copied, not averaged

    def _schedulers(self) -> list[Any]:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return []
        return schedulers if isinstance(schedulers, list) else [schedulers]

    # --- optimizers ---------------------------------------------------------------------------------
    def _make_optimizer(self, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        if self.config.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr, weight_decay=self.config.weight_decay)
        # Fused on GPUs: one kernel per step, and it can skip a bad update on the device (see on_before_optimizer_step)
        fused = bool(params) and all(param.is_cuda for param in params)
        return torch.optim.Adam(params, lr=lr, betas=(self.config.beta1, self.config.beta2),
                                weight_decay=self.config.weight_decay, fused=fused or None)

    def configure_optimizers(self) -> Any:
        trainer = self._trainer
        return self.build_optimizers(trainer.max_steps if trainer is not None else -1,
                                     trainer.max_epochs if trainer is not None else None)

    def build_optimizers(self, max_steps: int, max_epochs: int | None = None) -> Any:
        """The D and G optimizers (and LR schedulers). A null model.lr_decay_end ends linear decay at ``max_steps``
        batches (``max_epochs`` epochs with lr_schedule_unit=epochs). Also called before training, so a bad setting
        fails before anything runs."""
        # Order matters: the D optimizer comes first and steps every batch (it is the counted one).
        try:
            optimizers = [self._make_optimizer(self.discriminator_parameters(), self.config.lr_d),
                          self._make_optimizer(self.generator_parameters(), self.config.lr_g)]
        except ValueError as error:  # torch's own range checks, for what check_config does not cover
            raise ConfigError(f"model.optimizer: {error}") from None
        if self.config.lr_schedule == "constant":
            return optimizers
        epochs = self.config.lr_schedule_unit == "epochs"
        budget, budget_key = (max_epochs, "trainer.max_epochs") if epochs else (max_steps, "trainer.max_steps")
        total = self.config.lr_decay_end if self.config.lr_decay_end is not None else budget
        if total is None or total < 1:
            raise ConfigError(f"model.lr_schedule: linear_decay needs model.lr_decay_end or a {budget_key} > 0")
        start = self.config.lr_decay_start

        def factor(batch: int) -> float:
            # Schedulers step once per batch; in epoch units the position is the epoch the batch falls in.
            position = batch // self.trainer.num_training_batches if epochs and batch > 0 else batch
            return 1.0 if position < start else max(0.0, 1.0 - (position - start) / max(1, total - start))

        return optimizers, [torch.optim.lr_scheduler.LambdaLR(opt, factor) for opt in optimizers]

    # --- exact resume: RNG streams travel with the checkpoint ---------------------------------------
    # Under DDP every rank draws its own latents (a rank > 0 reseeds at its first start), so each rank's streams are
    # gathered into the checkpoint ("rng_states_per_rank") and each rank takes its own back on resume.
    _RANK_SEED_STRIDE = 1_000_003

    @staticmethod
    def _rng_states() -> dict[str, Any]:
        # Tensors and plain tuples only, so checkpoints still load with torch.load(weights_only=True).
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
            "python": random.getstate(),
        }

    def weights_digest(self) -> str:
        """SHA-256 of every parameter (names, dtypes, shapes, bytes): equal on all DDP ranks if they are in sync."""
        digest = hashlib.sha256()
        for name, param in self.named_parameters():
            digest.update(f"{name}:{param.dtype}:{tuple(param.shape)}".encode())
            digest.update(param.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        states = self._rng_states()
        checkpoint["rng_states"] = states
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1 and torch.distributed.is_initialized():
            # Every rank dumps the checkpoint (rank 0 writes it), so these collectives are met on all ranks.
            gathered: list[Any] = [None] * trainer.world_size
            torch.distributed.all_gather_object(gathered, (states, self.weights_digest()))
            checkpoint["rng_states_per_rank"] = [rank_states for rank_states, _ in gathered]
            digests = [digest for _, digest in gathered]
            checkpoint["weights_digest_per_rank"] = digests
            if len(set(digests)) > 1:  # a checkpoint holds rank 0's weights: useless if the others trained apart
                apart = [rank for rank, digest in enumerate(digests) if digest != digests[0]]
                raise RanksOutOfSyncError(f"DDP ranks {apart} hold different weights from rank 0 at batch "
                                          f"{int(self.batches_seen)}: gradient synchronisation failed; not saved")
        checkpoint["nonfinite_guard"] = {"skipped_steps": self.skipped_steps, "streak": self.nonfinite_streak,
                                         "amp_skipped_steps": self.amp_skipped_steps}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Restored at train start, not here: code between loading and the first batch may draw numbers.
        per_rank = checkpoint.get("rng_states_per_rank")
        rank, world = (self._trainer.global_rank, self._trainer.world_size) if self._trainer is not None else (0, 1)
        self._rng_to_restore = per_rank[rank] if per_rank and len(per_rank) == world else checkpoint.get("rng_states")
        guard = checkpoint.get("nonfinite_guard", {})
        self.skipped_steps = int(guard.get("skipped_steps", 0))
        self.nonfinite_streak = int(guard.get("streak", 0))
        self.amp_skipped_steps = int(guard.get("amp_skipped_steps", 0))

    def _wrappers_are_idle(self) -> bool:
        """True when Lightning's per-update wrappers (manual_backward, LightningOptimizer.step) would do nothing but
        the backward, the step and our on_before_optimizer_step: one device, 32-bit, and no callback or hook of
        this module on backward or the optimizer step. The loop then calls those directly: the wrappers' hook
        dispatch measured about 0.1 ms a batch on a CPU (the toy MLPs of benchmarks/scaling.py at batch 1: 2.67 ->
        2.55 ms). Under DDP (gradient-sync bookkeeping before backward) and mixed precision (loss scaling and
        unscaling) they are needed."""
        trainer = self.trainer
        if type(trainer.strategy) is not SingleDeviceStrategy or type(trainer.precision_plugin) is not Precision:
            return False
        hooks = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")
        if any(is_overridden(hook, callback, L.Callback) for callback in trainer.callbacks for hook in hooks):
            return False
        if any(is_overridden(hook, self, L.LightningModule) for hook in ("on_before_backward", "on_after_backward",
                                                                           "backward")):
            return False
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        return all(hasattr(optimizer, "_on_before_step") for optimizer in optimizers)  # private in Lightning 2.x

    def on_train_end(self) -> None:
        self._guarded_buffers = None  # after the fit the buffers may move (.to(device)): list them anew

    def on_train_start(self) -> None:
        self._batch_count = None  # re-read: a checkpoint may have been loaded since
        self._direct_updates = self._wrappers_are_idle()
        self._guarded_buffers = self._floating_buffers()
        states, self._rng_to_restore = self._rng_to_restore, None
        if not states:
            rank = self.trainer.global_rank
            if rank > 0:  # seeded like rank 0 so far: give this rank its own latent and dropout streams
                L.seed_everything(torch.initial_seed() + rank * self._RANK_SEED_STRIDE, verbose=False)
            return
        torch.set_rng_state(states["torch"])
        if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states["cuda"])
        kind, keys, pos, has_gauss, cached = states["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        random.setstate(states["python"])


# Lightning asks for training_step's signature on every batch (does it take batch_idx?). inspect returns a function's
# __signature__ as it is (PEP 362) instead of deriving it anew: about 25 us a batch on a CPU.
GANModule.training_step.__signature__ = inspect.signature(GANModule.training_step)
