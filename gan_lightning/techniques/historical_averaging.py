"""Historical averaging (Salimans et al. 2016, section 3.3): each player's loss gains w * ||theta - mean of past
theta||^2, which damps the oscillations of the two-player game. The running means are buffers of the model's
``historical`` module: checkpointed with the weights (exact resume)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gan_lightning.losses import historical_average
from gan_lightning.nets.layers import HistoricalAverages
from gan_lightning.techniques.base import LossTerm, Technique


@dataclass
class HistoricalAveragingConfig:
    historical_averaging: float = 0.0  # w; 0 = off


class HistoricalAveraging(Technique):
    Config = HistoricalAveragingConfig
    switch = "historical_averaging"

    @classmethod
    def checks(cls, config: Any) -> list[tuple[str, bool, str]]:
        return [("historical_averaging", config.historical_averaging >= 0, "a float >= 0")]

    def setup(self, model: Any) -> None:
        model.historical = HistoricalAverages({"d": model.discriminator_parameters(),
                                               "g": model.generator_parameters()})

    def discriminator_term(self, model: Any, batch: Any, fakes: Any) -> LossTerm:
        average = historical_average(model.discriminator_parameters(), model.historical.averages("d"))
        return "hist_avg_d", average, self.config.historical_averaging

    def generator_term(self, model: Any, batch: Any, fakes: Any) -> LossTerm:
        average = historical_average(model.generator_parameters(), model.historical.averages("g"))
        return "hist_avg_g", average, self.config.historical_averaging

    def after_discriminator_step(self, model: Any) -> None:
        model.historical.update("d", model.discriminator_parameters())

    def after_generator_step(self, model: Any) -> None:
        model.historical.update("g", model.generator_parameters())
