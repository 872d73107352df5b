"""What a training technique is: one object that says everything the technique does to a GAN.

A model class lists the techniques that make sense for it (``AdversarialModule.techniques``); the model's Config
mixes in each one's ``Config`` (so a model accepts only keys that mean something to it), and the adversarial loop
calls the hooks of the enabled ones, in the order of that list, at fixed points of a batch. Every hook defaults to
nothing, so a technique writes only what it does.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from torch import Tensor

# (log name, value, weight): the loop adds weight * value to the player's loss and logs value under the name.
LossTerm = tuple[str, Tensor, float]


class Technique:
    """One technique: its config keys, checks, network surgery, loss terms, after-step work and checkpoint state."""

    Config: ClassVar[type]  # a dataclass of the technique's keys, at their "off" values by default
    switch: ClassVar[str | None] = None  # the key that turns it on by leaving its default; None: always on

    def __init__(self, config: Any) -> None:
        self.config = config  # the model's whole (validated) config: a technique reads its own keys from it

    @classmethod
    def enabled(cls, config: Any) -> bool:
        """Whether ``config`` turns the technique on (its hooks run only then): ``switch`` is not at its default."""
        if cls.switch is None:
            return True
        off = next(field.default for field in dataclasses.fields(cls.Config) if field.name == cls.switch)
        return getattr(config, cls.switch) != off

    @classmethod
    def checks(cls, config: Any) -> list[tuple[str, bool, str]]:
        """(key, ok, accepted) rows for ``errors.check_values``: the value ranges of the technique's keys."""
        return []

    @classmethod
    def check(cls, config: Any, model_cls: type) -> None:
        """Checks across keys or against the model class (raise ConfigError naming the key); only when enabled."""

    def before_networks(self, model: Any) -> None:
        """Before the model builds its networks (state the networks' construction or initialisation reads)."""

    def setup(self, model: Any) -> None:
        """After the networks exist: surgery on them, buffers and modules the technique keeps on the model."""

    def d_input_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of one D input, given what it would be without the technique (latent GANs build D for it)."""
        return shape

    def d_input(self, x: Tensor) -> Tensor:
        """Samples as D takes them (latent GANs)."""
        return x

    def generate(self, model: Any, z: Tensor, labels: Tensor | None) -> Tensor | None:
        """G's training forward in place of the plain one, or None to leave it (latent GANs)."""
        return None

    def check_data(self, model: Any, datamodule: Any) -> None:
        """Before training: refuse data the technique cannot work with (ConfigError)."""

    def discriminator_term(self, model: Any, batch: Any, fakes: Any) -> LossTerm | None:
        """A term for D's loss (``fakes`` detached)."""
        return None

    def generator_term(self, model: Any, batch: Any, fakes: Any) -> LossTerm | None:
        """A term for G's loss."""
        return None

    def after_discriminator_step(self, model: Any) -> None:
        """After every D update the guard did not skip."""

    def after_generator_step(self, model: Any) -> None:
        """After every G update the guard did not skip."""

    def logs(self, model: Any) -> dict[str, Tensor]:
        """Scalars to log after every batch (as ``train/<name>``), beside the loss terms."""
        return {}
