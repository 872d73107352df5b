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
import random
from dataclasses import dataclass
from typing import Any, Optional

import lightning as L
import numpy as np
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from torch.utils._pytree import tree_map

from gan_lightning.errors import ConfigError
from gan_lightning.losses import LOSS_FAMILIES

# Loss families whose D output is a logit, so that sigmoid(D) is D's probability of "real".
_LOGIT_LOSSES = {"minimax", "saturating", "non_saturating"}
# Families with a real-sample target that one-sided label smoothing can lower.
_SMOOTHABLE_LOSSES = _LOGIT_LOSSES | {"least_squares"}


@dataclass
class GANConfig:
    """Keys every model accepts; variants extend it with their network options and recipe defaults."""

    name: str = "?"
    latent_dim: int = 100
    loss: str = "non_saturating"  # minimax (= saturating), non_saturating, wasserstein, hinge, least_squares
    n_critic: int = 1  # discriminator steps per generator step ("k" in Goodfellow et al.)
    optimizer: str = "adam"  # adam | rmsprop
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 0.0
    grad_clip_d: Optional[float] = None  # max gradient norm per optimizer, null = off
    grad_clip_g: Optional[float] = None
    lr_schedule: str = "constant"  # constant | linear_decay (to 0 at trainer.max_steps)
    lr_decay_start: int = 0  # batch at which linear decay begins
    lr_decay_end: Optional[int] = None  # batch at which the lr reaches 0; null = trainer.max_steps
    ema_decay: Optional[float] = None  # EMA copy of G for samples/metrics, e.g. 0.999; null = off
    ema_start: int = 0  # batches before the EMA starts averaging (it copies G until then)
    real_label: float = 1.0  # < 1: one-sided label smoothing (Salimans et al. 2016)
    sample_seed: int = 1234  # seed of the fixed latent batch rendered into sample grids


_OPTIMIZERS = ("adam", "rmsprop")
_SCHEDULES = ("constant", "linear_decay")


def _no_closure() -> None:
    return None


class GANModule(L.LightningModule, abc.ABC):
    """Base class: subclasses build their networks and may override the loss hooks."""

    Config = GANConfig
    registry_name = "?"
    conditional = False  # True: G and D receive class labels

    def __init__(self, config: DictConfig | dict[str, Any], sample_shape: tuple[int, ...] | list[int],
                 num_classes: int | None = None, experiment: dict[str, Any] | None = None):
        super().__init__()
        config = OmegaConf.merge(OmegaConf.structured(self.Config), config)
        self.check_config(config)
        self.save_hyperparameters({"config": OmegaConf.to_container(config), "sample_shape": list(sample_shape),
                                   "num_classes": num_classes, "experiment": experiment})
        self.config = config
        self.sample_shape = tuple(sample_shape)
        if self.conditional and not num_classes:
            raise ConfigError(f"model.name: {self.registry_name} is conditional but the data has no class labels")
        self.num_classes = num_classes if self.conditional else None
        self.automatic_optimization = False
        self.d_loss_fn, self.g_loss_fn = LOSS_FAMILIES[config.loss]
        try:
            self.generator = self.build_generator()
            self.discriminator = self.build_discriminator()
        except ValueError as error:  # e.g. an image size the architecture cannot produce
            raise ConfigError(f"model.name: {self.registry_name} cannot model samples of shape "
                              f"{self.sample_shape}: {error}") from None
        self.generator_ema = None
        if config.ema_decay is not None:
            # Left in train mode like the rest of the module (Lightning warns otherwise); generate() uses eval.
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
        # A buffer, so it is checkpointed with the weights and resume continues the D/G rhythm.
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.long))
        self._rng_to_restore: dict[str, Any] | None = None
        self._counted_step_taken = False

    # --- what variants provide ----------------------------------------------------------------------
    @abc.abstractmethod
    def build_generator(self) -> nn.Module:
        """G(z[, labels]) -> samples in data space."""

    @abc.abstractmethod
    def build_discriminator(self) -> nn.Module:
        """D(x[, labels]) -> one score per sample."""

    @classmethod
    def check_config(cls, config: DictConfig) -> None:
        """Value checks beyond types (omegaconf did those); raise ConfigError naming the key."""
        checks = [
            ("loss", config.loss in LOSS_FAMILIES, ", ".join(LOSS_FAMILIES)),
            ("optimizer", config.optimizer in _OPTIMIZERS, ", ".join(_OPTIMIZERS)),
            ("lr_schedule", config.lr_schedule in _SCHEDULES, ", ".join(_SCHEDULES)),
            ("n_critic", config.n_critic >= 1, "an int >= 1"),
            ("latent_dim", config.latent_dim >= 1, "an int >= 1"),
            ("ema_decay", config.ema_decay is None or 0.0 <= config.ema_decay < 1.0, "null or a float in [0, 1)"),
            ("real_label", 0.0 < config.real_label <= 1.0, "a float in (0, 1]"),
        ]
        for key, ok, accepted in checks:
            if not ok:
                raise ConfigError(f"model.{key}: {config[key]!r}; accepted: {accepted}")
        if config.real_label != 1.0 and config.loss not in _SMOOTHABLE_LOSSES:
            raise ConfigError(f"model.real_label: label smoothing needs a loss with a real target "
                              f"({', '.join(sorted(_SMOOTHABLE_LOSSES))}), not {config.loss}")

    def generator_parameters(self) -> list[nn.Parameter]:
        return list(self.generator.parameters())

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return list(self.discriminator.parameters())

    def split_batch(self, batch: Any) -> tuple[Tensor, Tensor | None]:
        """(real samples, labels or None) from whatever the datamodule yields."""
        if isinstance(batch, (tuple, list)):
            return batch[0], (batch[1] if self.conditional and len(batch) > 1 else None)
        return batch, None

    def make_fakes(self, real: Tensor, labels: Tensor | None) -> Any:
        """The generated side of the batch: G(z) with z ~ N(0, I), conditioned on the real labels."""
        return self.generator(self.sample_latent(real.shape[0]), *self._label_args(labels))

    def discriminate(self, x: Tensor, labels: Tensor | None) -> Tensor:
        return self.discriminator(x, *self._label_args(labels))

    def discriminator_loss(self, real: Tensor, fakes: Any, labels: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        """``fakes`` arrive detached: nothing here can reach G's weights."""
        real_scores, fake_scores = self.discriminate(real, labels), self.discriminate(fakes, labels)
        if self.config.loss in _SMOOTHABLE_LOSSES:
            loss = self.d_loss_fn(real_scores, fake_scores, real_target=self.config.real_label)
        else:
            loss = self.d_loss_fn(real_scores, fake_scores)
        return loss, {"d_loss": loss, "d_real": self._score_summary(real_scores),
                      "d_fake": self._score_summary(fake_scores)}

    def generator_loss(self, real: Tensor, fakes: Any, labels: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        loss = self.g_loss_fn(self.discriminate(fakes, labels))
        return loss, {"g_loss": loss}

    def after_discriminator_step(self) -> None:
        """Called after every D update (WGAN clips the critic's weights here)."""

    # --- sampling -----------------------------------------------------------------------------------
    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        if generator is not None:  # seeded draws happen on the CPU so they match on every device
            return torch.randn(n, self.config.latent_dim, generator=generator).to(self.device)
        return torch.randn(n, self.config.latent_dim, device=self.device)

    def sample_labels(self, n: int, generator: torch.Generator | None = None) -> Tensor | None:
        if not self.conditional:
            return None
        return torch.randint(0, self.num_classes, (n,), generator=generator).to(self.device)

    def fixed_inputs(self, n: int) -> tuple[Tensor, Tensor | None]:
        """The same latents (and labels) every time: grids at different steps are comparable."""
        generator = torch.Generator().manual_seed(self.config.sample_seed)
        return self.sample_latent(n, generator), self.fixed_labels(n)

    def fixed_labels(self, n: int) -> Tensor | None:
        return None if not self.conditional else (torch.arange(n) % self.num_classes).to(self.device)

    @property
    def sampling_generator(self) -> nn.Module:
        """The EMA copy of G where there is one (smoother samples), else G itself."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    @torch.no_grad()
    def generate(self, z: Tensor, labels: Tensor | None = None, use_ema: bool = True) -> Tensor:
        """Samples in data space from G in eval mode (batchnorm uses its running statistics)."""
        net = self.sampling_generator if use_ema else self.generator
        was_training = net.training
        net.eval()
        try:
            return net(z.to(self.device), *self._label_args(labels))
        finally:
            net.train(was_training)

    def _label_args(self, labels: Tensor | None) -> tuple[Tensor, ...]:
        return (labels,) if self.conditional else ()

    def _score_summary(self, scores: Tensor) -> Tensor:
        """Mean D output: a probability of "real" for logit losses, the raw score otherwise."""
        scores = scores.detach().float()
        return torch.sigmoid(scores).mean() if self.config.loss in _LOGIT_LOSSES else scores.mean()

    # --- the alternating loop -----------------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int) -> None:
        real, labels = self.split_batch(batch)
        opt_d, opt_g = self.optimizers()
        self._counted_step_taken = False
        generator_turn = (int(self.batches_seen) + 1) % self.config.n_critic == 0
        with torch.set_grad_enabled(generator_turn):  # no G graph on critic-only batches
            fakes = self.make_fakes(real, labels)
        detached = tree_map(lambda t: t.detach() if isinstance(t, Tensor) else t, fakes)
        logs = self._optimize(opt_d, lambda: self.discriminator_loss(real, detached, labels), self.config.grad_clip_d)
        self.after_discriminator_step()
        if generator_turn:
            logs.update(self._optimize(opt_g, lambda: self.generator_loss(real, fakes, labels),
                                       self.config.grad_clip_g))
            self.update_ema()
        self.batches_seen += 1
        for scheduler in self._schedulers():
            scheduler.step()
        self.log_dict({f"train/{k}": v.detach().float() for k, v in logs.items()}, on_step=True, on_epoch=False,
                      prog_bar=False)
        self.log_dict({k: logs[k].detach().float() for k in ("d_loss", "g_loss") if k in logs}, prog_bar=True,
                      logger=False, on_step=True, on_epoch=False)

    def _optimize(self, optimizer: LightningOptimizer, compute_loss, clip: float | None) -> dict[str, Tensor]:
        self.toggle_optimizer(optimizer)
        loss, logs = compute_loss()
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if clip is not None:
            self.clip_gradients(optimizer, gradient_clip_val=clip, gradient_clip_algorithm="norm")
        self._step(optimizer)
        self.untoggle_optimizer(optimizer)
        return logs

    def _step(self, optimizer: LightningOptimizer) -> None:
        """Step ``optimizer``; only the batch's first step advances Lightning's global step counter."""
        if not self._counted_step_taken:
            optimizer.step()
            self._counted_step_taken = True
        else:  # the same precision-plugin/strategy path as LightningOptimizer.step, minus the counter
            self.trainer.strategy.optimizer_step(optimizer.optimizer, _no_closure, model=self)

    @torch.no_grad()
    def update_ema(self) -> None:
        if self.generator_ema is None:
            return
        decay = self.config.ema_decay if int(self.batches_seen) >= self.config.ema_start else 0.0
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
        return torch.optim.Adam(params, lr=lr, betas=(self.config.beta1, self.config.beta2),
                                weight_decay=self.config.weight_decay)

    def configure_optimizers(self) -> Any:
        # Order matters: the D optimizer comes first and steps every batch (it is the counted one).
        optimizers = [self._make_optimizer(self.discriminator_parameters(), self.config.lr_d),
                      self._make_optimizer(self.generator_parameters(), self.config.lr_g)]
        if self.config.lr_schedule == "constant":
            return optimizers
        total = self.config.lr_decay_end
        if total is None:
            total = self.trainer.max_steps if self._trainer is not None else -1
        if total is None or total < 1:
            raise ConfigError("model.lr_schedule: linear_decay needs model.lr_decay_end or trainer.max_steps")
        start = self.config.lr_decay_start

        def factor(batch: int) -> float:
            return 1.0 if batch < start else max(0.0, 1.0 - (batch - start) / max(1, total - start))

        return optimizers, [torch.optim.lr_scheduler.LambdaLR(opt, factor) for opt in optimizers]

    # --- exact resume: RNG streams travel with the checkpoint ---------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Tensors and plain tuples only, so checkpoints still load with torch.load(weights_only=True).
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        checkpoint["rng_states"] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
            "python": random.getstate(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Restored at train start, not here: code between loading and the first batch may draw numbers.
        self._rng_to_restore = checkpoint.get("rng_states")

    def on_train_start(self) -> None:
        states, self._rng_to_restore = self._rng_to_restore, None
        if not states:
            return
        torch.set_rng_state(states["torch"])
        if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states["cuda"])
        kind, keys, pos, has_gauss, cached = states["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        random.setstate(states["python"])
