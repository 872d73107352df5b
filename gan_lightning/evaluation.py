"""Scoring a generator against its dataset: shared by the metrics callback and ``gan-lightning evaluate``.

Protocol: the model's ``eval_samples`` (``n_samples`` of them, seeded, so two evaluations of one model are
comparable; for latent GANs the EMA generator where there is one, on fixed latents); real statistics over the
first ``n_real`` samples of the datamodule's dataset, cached on disk by (dataset, resolution, extractor, count);
preprocessing is the extractor's (see gan_lightning/metrics/extractors.py).

Under DDP the work is split, not repeated: rank r generates and extracts batches r, r + W, r + 2W, ... of the same
seeded sequence, rank 0 gathers the features in batch order, computes the scores once and sends them to every rank
(so all ranks agree on what a monitoring checkpoint sees). The result equals a single process scoring the same
samples.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor

from gan_lightning.metrics import MetricsError, build_extractor, class_histogram, parse_metrics
from gan_lightning.metrics.extractors import ExtractorOutput, FeatureExtractor
from gan_lightning.metrics.stats import (
    MetricOptions,
    RealStats,
    StatsKey,
    extract,
    needs_real_stats,
    real_statistics,
    scores_from_output,
)


def make_extractor(settings: DictConfig, device: torch.device | str = "cpu") -> FeatureExtractor:
    kwargs = {"weights_path": settings.inception_weights} if settings.extractor == "inception" else {}
    return build_extractor(settings.extractor, **kwargs).to(device)


def real_stats_for(datamodule: Any, extractor: FeatureExtractor, settings: DictConfig) -> RealStats:
    available = datamodule.real_sample_count()
    n_real = available if settings.n_real is None else min(settings.n_real, available)
    key = StatsKey(dataset=datamodule.dataset_id, split="all", resolution=int(datamodule.sample_shape[-1]),
                   extractor=extractor.name, num_samples=n_real)

    def features() -> Tensor:
        return extract(extractor, datamodule.real_samples(n_real), settings.batch_size).features

    return real_statistics(key, features, cache_dir=settings.cache_dir)


def finite_batches(batches: Iterator[Tensor]) -> Iterator[Tensor]:
    """Pass sample batches through, refusing NaN/inf ones in one line (they would end in a LinAlgError)."""
    for batch in batches:
        if not bool(torch.isfinite(batch).all()):
            raise MetricsError("the generator produced non-finite samples (NaN/inf): the model diverged")
        yield batch


def process_group() -> tuple[int, int]:
    """(rank, world size) of the initialised default process group; (0, 1) outside DDP."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _own_share(model: Any, datamodule: Any, settings: DictConfig, extractor: FeatureExtractor, rank: int,
               world: int) -> tuple[list[ExtractorOutput], str | None]:
    """This rank's share of the evaluation batches, extracted, on the CPU; or its failure (non-finite samples),
    which must travel to rank 0 like the features rather than leave the other ranks waiting in the gather."""
    batches = model.eval_samples(settings.n_samples, settings.batch_size, settings.seed, datamodule,
                                 shard=(rank, world))
    try:
        return [ExtractorOutput(*(t.cpu() for t in extractor(batch))) for batch in finite_batches(batches)], None
    except MetricsError as error:
        return [], str(error)


def _in_batch_order(shares: list[tuple[list[ExtractorOutput], str | None]]) -> ExtractorOutput:
    """Every rank's batches interleaved back into the order one process would have made them (batch i comes from
    rank i mod W); the first rank's failure instead, if any rank failed."""
    failure = next((failure for _, failure in shares if failure), None)
    if failure:
        raise MetricsError(failure)
    outputs = [own for own, _ in shares]
    ordered = [outputs[i % len(outputs)][i // len(outputs)] for i in range(sum(map(len, outputs)))]
    if not ordered:
        raise MetricsError("no images to evaluate")
    return ExtractorOutput(torch.cat([out.features for out in ordered]), torch.cat([out.logits for out in ordered]))


def _same_on_every_rank(compute: Any) -> Any:
    """``compute()`` on rank 0, its result (or its MetricsError) on every rank: a failure on one rank must not leave
    the others waiting in a collective."""
    outcome: list[Any] = [None]
    if torch.distributed.get_rank() == 0:
        try:
            outcome[0] = ("ok", compute())
        except MetricsError as error:
            outcome[0] = ("error", str(error))
    torch.distributed.broadcast_object_list(outcome, src=0)
    kind, value = outcome[0]
    if kind == "error":
        raise MetricsError(value)
    return value


def evaluate(model: Any, datamodule: Any, settings: DictConfig, extractor: FeatureExtractor | None = None,
             real: RealStats | None = None) -> dict[str, Any]:
    """Scores as a flat dict: fid, is, is_std, kid, kid_std (as requested), plus class coverage for
    classifier extractors and whether the real statistics came from the cache. Under DDP every rank must call it
    (it splits the samples across ranks); the real statistics are needed on rank 0 only."""
    names = parse_metrics(settings.metrics)
    if len(model.sample_shape) != 3:
        raise MetricsError(f"FID/IS/KID need image samples, this model makes samples of shape {model.sample_shape}")
    extractor = extractor or make_extractor(settings, model.device)
    rank, world = process_group()
    if world == 1:
        return _scores(extract(extractor, finite_batches(model.eval_samples(
            settings.n_samples, settings.batch_size, settings.seed, datamodule))), datamodule, settings, extractor,
            real, names)
    shares: list[Any] | None = [None] * world if rank == 0 else None
    torch.distributed.gather_object(_own_share(model, datamodule, settings, extractor, rank, world), shares, dst=0)
    # Scored on rank 0; the scores, or a failure on any rank, reach every rank.
    return _same_on_every_rank(lambda: _scores(_in_batch_order(shares), datamodule, settings, extractor, real, names))


def _scores(fake: ExtractorOutput, datamodule: Any, settings: DictConfig, extractor: FeatureExtractor,
            real: RealStats | None, names: list[str]) -> dict[str, Any]:
    if real is None and needs_real_stats(names):
        real = real_stats_for(datamodule, extractor, settings)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*rank-deficient.*")  # said once below, not every time
        scores: dict[str, Any] = scores_from_output(fake, real, names, MetricOptions.from_settings(settings),
                                                    extractor_name=extractor.name)
    n_scored = int(fake.features.shape[0])  # a translation model has as many as its test set, maybe < n_samples
    if extractor.num_classes <= 100:  # a domain classifier: report which classes the generator produces
        histogram = class_histogram(fake.logits, extractor.num_classes)
        scores["class_histogram"] = histogram.tolist()
        scores["classes_covered"] = int((histogram >= 0.01 * n_scored).sum())
    scores["n_samples"] = n_scored
    scores["extractor"] = extractor.name
    scores["real_stats_cached"] = bool(real.from_cache) if real is not None else None
    if n_scored < extractor.feature_dim and "fid" in names:
        scores["warning"] = (f"n_samples={n_scored} < feature dim {extractor.feature_dim}: the sample "
                             "covariance is rank-deficient and FID is biased upwards; compare only at equal n")
    return scores
