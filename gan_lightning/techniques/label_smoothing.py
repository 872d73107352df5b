"""One-sided label smoothing (Salimans et al. 2016, section 3.4): D's target for real samples is alpha < 1 (fakes
keep 0), which keeps D from growing over-confident. Needs a loss with a real target."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from gan_lightning.errors import ConfigError
from gan_lightning.losses import SMOOTHABLE_LOSSES
from gan_lightning.techniques.base import Technique


@dataclass
class LabelSmoothingConfig:
    real_label: float = 1.0  # alpha; 1 = off


class LabelSmoothing(Technique):
    Config = LabelSmoothingConfig
    switch = "real_label"

    @classmethod
    def checks(cls, config: Any) -> list[tuple[str, bool, str]]:
        return [("real_label", 0.0 < config.real_label <= 1.0, "a float in (0, 1]")]

    @classmethod
    def check(cls, config: Any, model_cls: type) -> None:
        if config.loss not in SMOOTHABLE_LOSSES:
            raise ConfigError(f"model.real_label: label smoothing needs a loss with a real target "
                              f"({', '.join(sorted(SMOOTHABLE_LOSSES))}), not {config.loss}")

    def setup(self, model: Any) -> None:
        model.d_loss_fn = partial(model.d_loss_fn, real_target=self.config.real_label)
