"""The registered metrics as one ``torchmetrics.Metric``: what the metrics callback and ``evaluate`` use, and what a
user's own LightningModule can hold.

    scores = ImageScores(build_extractor("mnist"), "fid,kid,recall,coverage", real=real_stats)
    scores.update(fake_images)                        # any number of times, on any number of DDP ranks
    self.log_dict({f"val/{k}": v for k, v in scores.compute().items()})
    scores.reset()

The feature extractor is a submodule (it follows ``.to(device)``); the states are the extracted features, logits and
each sample's position, all ``dist_reduce_fx="cat"``, plus a count of refused non-finite samples (``"sum"``). Under
DDP ``compute`` gathers them on every rank, puts the samples back in their global order (so a sharded evaluation
equals one process scoring the same samples, KID's subsets and IS's splits included) and every rank computes the
same numbers. The real side is cached statistics (``RealStats``), not a state: it is the same on every rank.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from gan_lightning.metrics.errors import MetricsError
from gan_lightning.metrics.extractors import ExtractorOutput, FeatureExtractor
from gan_lightning.metrics.stats import (
    MetricOptions,
    RealStats,
    check_real_stats,
    parse_metrics,
    scores_from_output,
)


class ImageScores(Metric):
    """FID / IS / KID / precision / recall / density / coverage (any registered metric) of generated images in data
    space [-1, 1]. ``compute()`` returns {score name: float}; the gathered features of the last ``compute`` stay in
    ``outputs`` for reports beyond the scores (class histograms)."""

    is_differentiable = False
    higher_is_better = None  # several scores, each with its own direction (stats.score_keys)
    full_state_update = False

    def __init__(self, extractor: FeatureExtractor, metrics: str | Iterable[str] = "fid,is,kid",
                 real: RealStats | None = None, options: MetricOptions | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.extractor = extractor
        self.names = parse_metrics(metrics)
        self.options = options or MetricOptions()
        self.real = real
        self.outputs: ExtractorOutput | None = None
        self._updates = 0  # position of the next sample on this rank when ``update`` is given none
        self.add_state("features", default=[], dist_reduce_fx="cat")
        self.add_state("logits", default=[], dist_reduce_fx="cat")
        self.add_state("order", default=[], dist_reduce_fx="cat")
        self.add_state("non_finite", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, images: Tensor, order: Tensor | None = None) -> None:
        """Extract one batch. ``order``: each sample's position in the whole evaluation (default: arrival order on
        this rank). A batch holding NaN/inf is counted, not extracted: ``compute`` refuses it on every rank alike,
        where raising here would leave the other ranks waiting in the gather."""
        if order is None:
            order = torch.arange(self._updates, self._updates + len(images))
        self._updates += len(images)
        if not bool(torch.isfinite(images).all()):
            self.non_finite += len(images)
            return
        out = self.extractor(images)
        self.features.append(out.features)
        self.logits.append(out.logits)
        self.order.append(torch.as_tensor(order, device=out.features.device))

    def compute(self) -> dict[str, float]:
        if int(self.non_finite) > 0:
            raise MetricsError("the generator produced non-finite samples (NaN/inf): the model diverged")
        if isinstance(self.features, list) and not self.features:  # after a DDP gather the states are tensors
            raise MetricsError("no images to evaluate")
        # A stable sort: samples given no order keep their rank-by-rank arrival order.
        position = dim_zero_cat(self.order).argsort(stable=True)
        self.outputs = ExtractorOutput(dim_zero_cat(self.features)[position], dim_zero_cat(self.logits)[position])
        check_real_stats(self.names, self.real, self.extractor.name)
        return scores_from_output(self.outputs, self.real, self.names, self.options)

    def reset(self) -> None:
        super().reset()
        self._updates = 0
