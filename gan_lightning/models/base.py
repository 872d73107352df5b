"""The adversarial base: the alternating D/G update of one batch, which every model family shares.

    fakes = make_fakes(batch)                       # with a graph only when G updates on this batch
    D update: discriminator_loss(batch, fakes.detach()) + the enabled techniques' D terms
    G update: generator_loss(batch, fakes) + their G terms   # every n_critic-th batch, on the same fakes

then the techniques' after-step work (weight clipping, historical averages, EMA), the counted step and the LR
schedulers. How an update is guarded and stepped lives in ``gan_lightning.engine``, what a resumed run needs in
``gan_lightning.resume``, each technique in ``gan_lightning.techniques``; a family (``latent.LatentGAN``,
``translation.ImageTranslationModel``) says what a batch, the fakes and the players' losses are, and what the model
shows (previews, evaluation samples).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from torch.utils._pytree import tree_map

from gan_lightning.engine import UpdateEngine
from gan_lightning.errors import ConfigError, check_values
from gan_lightning.losses import LOGIT_LOSSES, LOSS_FAMILIES
from gan_lightning.resume import ExactResume
from gan_lightning.techniques import Technique

_OPTIMIZERS = ("adam", "rmsprop")
_SCHEDULES = ("constant", "linear_decay")
_SCHEDULE_UNITS = ("batches", "epochs")


@dataclass
class AdversarialConfig:
    """Keys of every model: the game, its optimizers and schedule; families and techniques add theirs."""

    name: str = "?"  # registered model (gan-lightning list)
    loss: str = "non_saturating"  # minimax (= saturating), non_saturating, wasserstein, hinge, least_squares
    n_critic: int = 1  # discriminator steps per generator step ("k" in Goodfellow et al.)
    optimizer: str = "adam"  # adam | rmsprop
    lr_g: float = 2e-4  # G's learning rate
    lr_d: float = 2e-4  # D's learning rate
    beta1: float = 0.5  # Adam's beta1 (RMSprop: its momentum)
    beta2: float = 0.999  # Adam's beta2 (RMSprop: its smoothing constant alpha)
    weight_decay: float = 0.0  # L2 weight decay of both optimizers
    grad_clip_d: float | None = None  # max gradient norm per optimizer, null = off
    grad_clip_g: float | None = None  # G's max gradient norm; null = off
    lr_schedule: str = "constant"  # constant | linear_decay (to 0 at trainer.max_steps)
    lr_schedule_unit: str = "batches"  # batches | epochs: the unit of lr_decay_start and lr_decay_end
    lr_decay_start: int = 0  # batch (or epoch) at which linear decay begins
    lr_decay_end: int | None = None  # batch (or epoch) where the lr reaches 0; null = trainer.max_steps (max_epochs)
    sample_seed: int = 1234  # seed of what previews show (fixed latents, pools, dropout draws)
    # A step whose loss or gradients hold NaN/inf is skipped (train/skipped_steps); this many consecutive batches
    # with a skipped step stop the run with one line (gan_lightning.engine).
    max_nonfinite_batches: int = 20
    # --- speed, not recipe (docs/benchmarks.md has the measured effect of each; resume may change them) -----
    channels_last: bool = False  # NHWC memory format for the networks and image batches (tensor cores on GPUs)
    compile: bool = False  # torch.compile G's and D's forwards in place (state-dict names unchanged)


class Preview(NamedTuple):
    """A grid's content: ``images`` (N x C x H x W in [-1, 1], or N x 2 points) laid out ``nrow`` per row, with an
    optional name per row (e.g. input, translation, reconstruction)."""

    images: Tensor
    nrow: int
    row_names: tuple[str, ...] = ()


@contextmanager
def seeded_randomness(seed: int, device: torch.device) -> Iterator[None]:
    """The global RNG (CPU, and ``device`` if it is a GPU) seeded with ``seed`` inside, restored after.

    For the randomness a network draws beyond its inputs (StyleGAN2's noise inputs, pix2pix's dropout at test time):
    seeded sampling and evaluation then give the same images every time, and the caller's random stream is left
    where it was."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def eval_forward(net: nn.Module, *inputs: Tensor) -> Tensor:
    """``net(*inputs)`` in eval mode (batchnorm on its running statistics, no dropout), then back to its mode."""
    was_training = net.training
    net.eval()
    try:
        return net(*inputs)
    finally:
        net.train(was_training)


def _channels_last(value: Any) -> Any:
    return value.contiguous(memory_format=torch.channels_last) if isinstance(value, Tensor) and value.dim() == 4 \
        else value


class AdversarialModule(L.LightningModule, abc.ABC):
    """Base of every model: subclasses build their networks and say what a batch, the fakes and the losses are.

    Built from a Config or keyword arguments (``DCGAN(latent_dim=64, sample_shape=(1, 28, 28))``); the
    hyperparameters are saved, so ``Model.load_from_checkpoint(path, weights_only=True)`` gives the model back.
    """

    Config: ClassVar[type] = AdversarialConfig
    techniques: ClassVar[tuple[type[Technique], ...]] = ()  # those that make sense for this model, in order
    registry_name: ClassVar[str] = "?"
    family: ClassVar[str] = "other models"  # the family heading of `gan-lightning list`; family bases set theirs

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = [t.__name__ for t in cls.techniques if not issubclass(cls.Config, t.Config)]
        if missing:  # a technique's hooks would read keys the model's config does not have
            raise TypeError(f"{cls.__name__}.Config must include the Config of {', '.join(missing)}")

    def __init__(self, config: DictConfig | dict[str, Any] | None = None, sample_shape: Any = None,
                 experiment: dict[str, Any] | None = None, *, image_shape: Any = None,
                 facts: dict[str, Any] | None = None, **options: Any) -> None:
        """``config``: the model's keys (a mapping), ``options`` more of them as keywords; ``sample_shape`` (or
        ``image_shape``): one sample, C x H x W (or (2,) for points); ``experiment``: the whole experiment, kept in
        the checkpoint; ``facts``: what a family learns from the data (``data_facts``)."""
        super().__init__()
        config = self.resolve_config(config, options)
        if sample_shape is None or image_shape is not None:
            if (sample_shape is None) == (image_shape is None):
                raise ConfigError(f"{type(self).__name__}: give the shape of a sample as sample_shape (or "
                                  "image_shape), once")
            sample_shape = image_shape
        facts = facts or {}
        self.save_hyperparameters({"config": OmegaConf.to_container(config), "sample_shape": list(sample_shape),
                                   "experiment": experiment, **facts})
        # The validated dataclass, not the DictConfig: a DictConfig attribute read costs ~15 us, and the loop reads
        # about twenty settings per batch.
        self.config = OmegaConf.to_object(config)
        self.sample_shape = tuple(sample_shape)
        self.automatic_optimization = False
        self.d_loss_fn, self.g_loss_fn = LOSS_FAMILIES[config.loss]
        self.engine = UpdateEngine(self.config.max_nonfinite_batches)
        self.exact_resume = ExactResume()
        self.active_techniques = [t(self.config) for t in self.techniques if t.enabled(self.config)]
        self.init_data(**facts)
        for technique in self.active_techniques:
            technique.before_networks(self)
        try:
            self.generator = self.build_generator()
            self.discriminator = self.build_discriminator()
        except ValueError as error:  # e.g. an image size the architecture cannot produce
            raise ConfigError(f"model.name: {self.registry_name} cannot model samples of shape "
                              f"{self.sample_shape}: {error}") from None
        except (RuntimeError, TypeError, OverflowError, MemoryError) as error:
            # torch refusing a layer: sizes past what an int64 holds or memory can allocate (model.latent_dim=2**63)
            reason = " ".join(str(error).split("Exception raised from")[0].split())[:160]  # torch's C++ trace cut
            raise ConfigError(f"model: {self.registry_name}'s networks cannot be built with these sizes "
                              f"({type(error).__name__}: {reason})") from None
        for technique in self.active_techniques:
            technique.setup(self)
        if self.config.channels_last and len(self.sample_shape) == 3:
            self.to(memory_format=torch.channels_last)  # 4-D weights only; .to(device) later keeps the format
        if self.config.compile:
            for net in (self.generator, self.discriminator):
                if net is not None:
                    net.compile()
        # A buffer, so it is checkpointed with the weights and resume continues the D/G rhythm.
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.long))
        # Its value on the host, read from the buffer once per fit: reading a GPU buffer every batch would wait for
        # the device each time.
        self._batch_count: int | None = None
        self.step_logs: dict[str, Tensor] = {}  # the last batch's scalars, for the TrainScalars callback
        # D's scores on the last real batch and how many real samples they judged: families set it in
        # discriminator_loss, for techniques that watch D (ADA's overfitting heuristic).
        self.real_scores: tuple[Tensor, int] | None = None

    # --- building -------------------------------------------------------------------------------------------
    @classmethod
    def resolve_config(cls, config: Any, options: dict[str, Any]) -> DictConfig:
        """The Config with ``config`` and ``options`` merged in, types and values checked (ConfigError)."""
        from gan_lightning.config import merge_schema

        values = OmegaConf.to_container(config) if isinstance(config, DictConfig) else dict(config or {})
        values.update(options)
        values.setdefault("name", cls.registry_name)
        merged = merge_schema(cls.Config, values, "model")
        cls.check_config(merged)
        return merged

    @classmethod
    def from_config(cls, config: Any, datamodule: Any = None, **facts: Any) -> AdversarialModule:
        """A model from a config (its ``model`` section, or a whole experiment) and what it needs to know of the
        data: taken from ``datamodule`` (``data_facts``), or given as keywords (``sample_shape=...``)."""
        if isinstance(config, (DictConfig, dict)) and "model" in config:
            config = config["model"]
        if datamodule is not None:
            facts = {**cls.data_facts(datamodule), **facts}
        return cls(config, **facts)

    @classmethod
    def from_hparams(cls, hparams: dict[str, Any]) -> AdversarialModule:
        """The model a checkpoint's hyperparameters describe (``hparams`` as saved; older checkpoints too)."""
        return cls(**hparams)

    @classmethod
    def data_facts(cls, datamodule: Any) -> dict[str, Any]:
        """What the model needs to know of the data, as constructor keywords."""
        return {"sample_shape": datamodule.sample_shape}

    def init_data(self, **facts: Any) -> None:
        """Keep what the family needs of the data's ``facts`` (before the networks are built)."""

    @classmethod
    def config_checks(cls, config: DictConfig) -> list[tuple[str, bool, str]]:
        """(key, ok, accepted) rows for the value checks beyond types; families and variants extend the list."""
        return [
            ("loss", config.loss in LOSS_FAMILIES, ", ".join(LOSS_FAMILIES)),
            ("optimizer", config.optimizer in _OPTIMIZERS, ", ".join(_OPTIMIZERS)),
            ("lr_schedule", config.lr_schedule in _SCHEDULES, ", ".join(_SCHEDULES)),
            ("lr_schedule_unit", config.lr_schedule_unit in _SCHEDULE_UNITS, ", ".join(_SCHEDULE_UNITS)),
            ("n_critic", config.n_critic >= 1, "an int >= 1"),
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
            ("max_nonfinite_batches", config.max_nonfinite_batches >= 1, "an int >= 1"),
            *(row for technique in cls.techniques for row in technique.checks(config)),
        ]

    @classmethod
    def check_config(cls, config: DictConfig) -> None:
        """Value checks beyond types (omegaconf did those); raise ConfigError naming the key."""
        check_values("model", config, cls.config_checks(config))
        if config.compile and config.channels_last:
            raise ConfigError("model.compile: not together with model.channels_last (torch.compile's stride "
                              "assertions fail on NHWC DCGAN nets, measured with torch 2.11); choose one")
        for technique in cls.techniques:
            if technique.enabled(config):
                technique.check(config, cls)

    def check_data(self, datamodule: Any) -> None:
        """Refuse, before training, data the enabled techniques cannot work with."""
        for technique in self.active_techniques:
            technique.check_data(self, datamodule)

    def technique(self, kind: type[Technique]) -> Technique | None:
        """The enabled technique of that kind, or None."""
        return next((t for t in self.active_techniques if isinstance(t, kind)), None)

    @abc.abstractmethod
    def build_generator(self) -> nn.Module:
        """The generator network(s): everything the G optimizer trains."""

    @abc.abstractmethod
    def build_discriminator(self) -> nn.Module | None:
        """The discriminator network(s): everything the D optimizer trains. None: a model trained by G's loss alone
        (SRResNet's pixel-loss pre-training): no D update, and G's optimizer is the only one (and the counted one)."""

    def generator_parameters(self) -> list[nn.Parameter]:
        return list(self.generator.parameters())

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return list(self.discriminator.parameters()) if self.discriminator is not None else []

    # --- what a family says: the batch, the fakes, the players' own losses --------------------------------------
    @abc.abstractmethod
    def prepare_batch(self, batch: Any) -> Any:
        """The datamodule's batch as the family's losses read it."""

    @abc.abstractmethod
    def make_fakes(self, batch: Any) -> Any:
        """The generated side of the batch (a tensor or a structure of tensors)."""

    @abc.abstractmethod
    def discriminator_loss(self, batch: Any, fakes: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """D's own loss and what to log with it; ``fakes`` arrive detached."""

    @abc.abstractmethod
    def generator_loss(self, batch: Any, fakes: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """G's own loss and what to log with it."""

    def checkpoint_extras(self) -> dict[str, Any]:
        """State beyond weights and buffers that exact resume needs (e.g. image pools), by checkpoint key."""
        return {}

    def load_checkpoint_extras(self, checkpoint: dict[str, Any]) -> None:
        """Take back what ``checkpoint_extras`` saved."""

    # --- what the model shows: callbacks, `evaluate` and `sample` go through these only --------------------------
    @abc.abstractmethod
    def preview(self, n: int, nrow: int, datamodule: Any = None) -> Preview:
        """What a sample grid shows: the same inputs every call, so grids over training compare."""

    @abc.abstractmethod
    def eval_samples(self, n: int, batch_size: int, seed: int, datamodule: Any = None,
                     shard: tuple[int, int] = (0, 1)) -> Iterator[Tensor]:
        """What metrics score: ``n`` samples in data space, in batches. With ``shard`` = (rank, world size), only
        batches rank, rank + world, ... of that same sequence (DDP evaluation)."""

    def eval_sample_count(self, n: int, datamodule: Any = None) -> int:
        """How many samples ``eval_samples(n, ...)`` gives (fewer than ``n`` where a model scores a fixed set)."""
        return n

    # --- the alternating update of one batch ----------------------------------------------------------------
    @property
    def batch_count(self) -> int:
        """Batches trained so far (the host copy of ``batches_seen``)."""
        if self._batch_count is None:
            self._batch_count = int(self.batches_seen)
        return self._batch_count

    def training_step(self, batch: Any, batch_idx: int) -> None:
        batch = self.prepare_batch(batch)
        if self.config.channels_last:
            batch = tree_map(_channels_last, batch)
        optimizers = self.optimizers()
        opt_d, opt_g = optimizers if self.discriminator is not None else (None, optimizers)
        self.engine.start_batch(self)
        generator_turn = (self.batch_count + 1) % self.config.n_critic == 0
        with torch.set_grad_enabled(generator_turn):  # no G graph on critic-only batches
            fakes = self.make_fakes(batch)
        logs: dict[str, Tensor] = {}
        if opt_d is not None:
            detached = tree_map(lambda t: t.detach() if isinstance(t, Tensor) else t, fakes)
            logs, stepped = self.engine.update(self, opt_d, lambda: self.discriminator_objective(batch, detached),
                                               self.config.grad_clip_d)
            if stepped:
                for technique in self.active_techniques:
                    technique.after_discriminator_step(self)
        if generator_turn:
            g_logs, stepped = self.engine.update(self, opt_g, lambda: self.generator_objective(batch, fakes),
                                                 self.config.grad_clip_g)
            logs.update(g_logs)
            if stepped:
                for technique in self.active_techniques:
                    technique.after_generator_step(self)
        for technique in self.active_techniques:
            logs.update(technique.logs(self))
        self.engine.end_batch(self.batch_count + 1)
        self.batches_seen.add_(1)  # in place: no buffer re-registration
        self._batch_count += 1
        for scheduler in self._schedulers():
            scheduler.step()
        self.step_logs = {k: v.detach() for k, v in logs.items()}
        # Where self.log would put them, as tensors (no device read), for callbacks that read train/* after a batch.
        self.trainer.callback_metrics.update({f"train/{k}": v for k, v in self.step_logs.items()})

    def discriminator_objective(self, batch: Any, fakes: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """What D minimises: its own loss plus ``weight * value`` for each enabled technique's D term."""
        loss, logs = self.discriminator_loss(batch, fakes)
        return self._with_terms(loss, logs, [t.discriminator_term(self, batch, fakes) for t in self.active_techniques],
                                "d_loss")

    def generator_objective(self, batch: Any, fakes: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """What G minimises: its own loss plus the enabled techniques' G terms."""
        loss, logs = self.generator_loss(batch, fakes)
        return self._with_terms(loss, logs, [t.generator_term(self, batch, fakes) for t in self.active_techniques],
                                "g_loss")

    @staticmethod
    def _with_terms(loss: Tensor, logs: dict[str, Tensor], terms: list, total: str) -> tuple[Tensor, dict]:
        for term in terms:
            if term is not None:
                name, value, weight = term
                loss = loss + weight * value
                logs[name] = value
        return loss, {total: loss, **logs}

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        self.engine.before_optimizer_step(self, optimizer)

    def grad_scaler(self) -> Any:
        """The 16-mixed GradScaler, or None (32-bit, bf16-mixed, or no trainer)."""
        trainer = self._trainer
        return getattr(trainer.precision_plugin, "scaler", None) if trainer is not None else None

    def score_summary(self, scores: Tensor) -> Tensor:
        """Mean D output: a probability of "real" for logit losses, the raw score otherwise."""
        scores = scores.detach().float()
        return torch.sigmoid(scores).mean() if self.config.loss in LOGIT_LOSSES else scores.mean()

    def configure_callbacks(self) -> list[L.Callback]:
        from gan_lightning.callbacks.train_scalars import TrainScalars

        return [TrainScalars()]  # the train/* scalars reach the loggers with any Trainer

    # --- optimizers and schedules ---------------------------------------------------------------------------
    def _make_optimizer(self, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        if self.config.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr, weight_decay=self.config.weight_decay)
        fused = bool(params) and all(param.is_cuda for param in params)  # one kernel per step on GPUs
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
        # Order matters: the D optimizer comes first and steps every batch (it is the counted one); a model without
        # a discriminator has G's alone.
        try:
            optimizers = [self._make_optimizer(self.discriminator_parameters(), self.config.lr_d)] \
                if self.discriminator is not None else []
            optimizers.append(self._make_optimizer(self.generator_parameters(), self.config.lr_g))
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

    def _schedulers(self) -> list[Any]:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return []
        return schedulers if isinstance(schedulers, list) else [schedulers]

    # --- exact resume (gan_lightning.resume) ----------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.exact_resume.save(self, checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.exact_resume.load(self, checkpoint)

    def on_train_start(self) -> None:
        self._batch_count = None  # re-read: a checkpoint may have been loaded since
        self.engine.start_fit(self)
        self.exact_resume.at_train_start(self)

