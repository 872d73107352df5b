"""Scoring a generator against its dataset: shared by the metrics callback and ``gan-lightning evaluate``.

Protocol: the model's ``eval_samples`` (``n_samples`` of them, seeded, so two evaluations of one model are
comparable; for latent GANs the EMA generator where there is one, on fixed latents); real statistics over the
first ``n_real`` samples of the datamodule's dataset, cached on disk by (dataset, resolution, extractor, count);
preprocessing is the extractor's (see gan_lightning/metrics/extractors.py).

Under DDP the work is split, not repeated: rank r generates and extracts batches r, r + W, r + 2W, ... of the same
seeded sequence into an ``ImageScores`` metric (gan_lightning/metrics/scores.py), whose states torchmetrics gathers;
every rank computes the same scores (so all ranks agree on what a monitoring checkpoint sees), equal to a single
process scoring the same samples.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor

from gan_lightning.metrics import (
    MetricsError,
    build_extractor,
    class_histogram,
    feature_statistics,
    frechet_distance,
    parse_metrics,
)
from gan_lightning.metrics.extractors import ExtractorOutput, FeatureExtractor
from gan_lightning.metrics.scores import ImageScores
from gan_lightning.metrics.stats import (
    METRICS,
    MetricOptions,
    RealStats,
    StatsKey,
    extract,
    needs_extractor,
    needs_real_stats,
    real_statistics,
)


def make_extractor(settings: DictConfig, device: torch.device | str = "cpu") -> FeatureExtractor:
    kwargs = {"weights_path": settings.inception_weights} if settings.extractor == "inception" else {}
    return build_extractor(settings.extractor, settings.protocol, **kwargs).to(device)


def real_stats_for(datamodule: Any, extractor: FeatureExtractor, settings: DictConfig) -> RealStats:
    available = datamodule.real_sample_count()
    n_real = available if settings.n_real is None else min(settings.n_real, available)
    key = StatsKey(dataset=datamodule.dataset_id, split="all", resolution=int(datamodule.sample_shape[-1]),
                   extractor=extractor.name, num_samples=n_real)

    def features() -> Tensor:
        return extract(extractor, datamodule.real_samples(n_real), settings.batch_size).features

    return real_statistics(key, features, cache_dir=settings.cache_dir)


def evaluate(model: Any, datamodule: Any, settings: DictConfig, extractor: FeatureExtractor | None = None,
             real: RealStats | None = None) -> dict[str, Any]:
    """Scores as a flat dict: fid, is, is_std, kid, kid_std, precision ... (as requested), plus class coverage for
    classifier extractors and whether the real statistics came from the cache. Under DDP every rank must call it: it
    generates and extracts its share of the samples, and ``ImageScores`` gathers them (every rank gets the scores)."""
    names = parse_metrics(settings.metrics)
    if len(model.sample_shape) != 3:
        raise MetricsError(f"FID/IS/KID need image samples, this model makes samples of shape {model.sample_shape}")
    check_metrics_apply(names, model)
    if extractor is None and needs_extractor(names):
        extractor = make_extractor(settings, model.device)
    if real is None and needs_real_stats(names):
        real = real_stats_for(datamodule, extractor, settings)
    sample_level = [name for name in names if METRICS[name].compute is not None]
    if not sample_level:  # e.g. intra_fid alone
        return _report(_model_level(names, model, datamodule, settings, extractor), None, settings, extractor, real,
                       names)
    scores = ImageScores(extractor, sample_level, real, MetricOptions.from_settings(settings))
    rank, world = (torch.distributed.get_rank(), torch.distributed.get_world_size()) if (
        torch.distributed.is_available() and torch.distributed.is_initialized()) else (0, 1)
    # Rank r makes batches r, r + W, ... of one seeded sequence; each sample's place in it travels with its features.
    sharded = {"shard": (rank, world)} if world > 1 else {}  # models written for one process need not know it
    for index, batch in enumerate(model.eval_samples(settings.n_samples, settings.batch_size, settings.seed,
                                                     datamodule, **sharded)):
        start = (rank + index * world) * settings.batch_size
        scores.update(batch, torch.arange(start, start + len(batch)))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*rank-deficient.*")  # said once below, not every time
        result: dict[str, Any] = scores.compute()
    result.update(_model_level(names, model, datamodule, settings, extractor))
    return _report(result, scores.outputs, settings, extractor, real, names)


def check_metrics_apply(metrics: str | list[str], model: Any) -> None:
    """One ``MetricsError`` line for a requested metric that cannot measure ``model`` (ppl without a mapping
    network, cas or intra_fid on an unconditional model), before any metric does work (or any training batch)."""
    for name in parse_metrics(metrics):
        if METRICS[name].check_model is not None:
            METRICS[name].check_model(model)


def _model_level(names: list[str], model: Any, datamodule: Any, settings: DictConfig,
                 extractor: FeatureExtractor | None) -> dict[str, Any]:
    """The requested metrics computed from the model and its data rather than from one set of features (the
    registry's ``model_level`` functions: intra_fid, cas, ppl, and any registered later)."""
    result: dict[str, Any] = {}
    for name in names:
        if METRICS[name].model_level is not None:
            result.update(METRICS[name].model_level(model, datamodule, settings, extractor))
    return result


def _class_conditional(model: Any, metric: str) -> int:
    classes = getattr(model, "num_classes", None)
    if not getattr(model, "conditional", False) or getattr(model, "multi_label", False) or not classes:
        raise MetricsError(f"{metric} needs a class-conditional model (one class label per sample)")
    return classes


def check_intra_fid(model: Any) -> None:
    _class_conditional(model, "intra_fid")


def check_cas(model: Any) -> None:
    classes = _class_conditional(model, "cas")
    if classes != 10:
        raise MetricsError(f"cas trains a 10-digit classifier; this model has {classes} classes")


def path_length(model: Any, datamodule: Any, settings: DictConfig,
                extractor: FeatureExtractor | None = None) -> dict[str, Any]:
    """Perceptual path length in W (gan_lightning/metrics/ppl.py) over ``n_samples`` pairs, batches of
    ``batch_size``, seeded with ``seed``; the distance is VGG16's LPIPS with ``vgg_weights`` (learned with
    ``lpips_weights``), else (for one-channel models) the MNIST net's."""
    from gan_lightning.metrics.perceptual import build_distance
    from gan_lightning.metrics.ppl import perceptual_path_length

    distance = build_distance(settings.vgg_weights, model.sample_shape[0], settings.lpips_weights)
    if distance is None:
        raise MetricsError(f"ppl: no offline perceptual network for {model.sample_shape[0]}-channel images; give "
                           "callbacks.metrics.vgg_weights (evaluate --vgg-weights), torchvision's vgg16 file")
    return perceptual_path_length(model, distance, settings.n_samples, batch_size=settings.batch_size,
                                  seed=settings.seed)


def classification_accuracy_score(model: Any, datamodule: Any, settings: DictConfig,
                                  extractor: FeatureExtractor | None = None) -> dict[str, Any]:
    """CAS (Ravuri & Vinyals 2019) for digit models: the shipped classifier's network and recipe
    (``fit_classifier``, ``cas_epochs`` epochs, seed ``seed``, one CPU thread) trained once on ``cas_per_class``
    generated digits per class (latents seeded ``seed + class``) and once on as many real training digits per class;
    both accuracies on the MNIST test split. Images are brought to 1 x 28 x 28 as the MNIST extractor does (luma,
    bilinear antialias)."""
    from gan_lightning.metrics.extractors import to_net_input
    from gan_lightning.metrics.mnist import accuracy, load_mnist_test
    from gan_lightning.metrics.train_mnist_classifier import fit_classifier

    check_cas(model)
    classes = model.num_classes
    if settings.cas_test_root is None:
        raise MetricsError("cas needs the MNIST test split: set callbacks.metrics.cas_test_root to the folder holding "
                           "MNIST/raw/t10k-images-idx3-ubyte[.gz]")
    test_images, test_labels = load_mnist_test(settings.cas_test_root)
    n = settings.cas_per_class
    generated, real = [], []
    for label in range(classes):
        generated.append(model.draw_samples(n, settings.seed + label, label).cpu())
        real.append(datamodule.real_samples_of_class(label, n).cpu())
        if len(real[-1]) < n:
            raise MetricsError(f"cas: the data has {len(real[-1])} images of class {label}, cas_per_class is {n}")
    labels = torch.arange(classes).repeat_interleave(n)
    scores = {}
    for key, images in (("cas", torch.cat(generated)), ("cas_real", torch.cat(real))):
        if not bool(torch.isfinite(images).all()):
            raise MetricsError("the generator produced non-finite samples (NaN/inf): the model diverged")
        with _one_cpu_thread():
            net = fit_classifier(to_net_input(images, 28, 1), labels, settings.cas_epochs, seed=settings.seed,
                                 verbose=False)
            scores[key] = accuracy(net, test_images, test_labels)
    return scores


@contextmanager
def _one_cpu_thread() -> Iterator[None]:
    """CAS's classifier is trained on one CPU thread: the score then does not depend on the machine's thread count
    (float sums in another order train another network), and a 64-image step of this small net gains nothing from
    more threads: on a shared 2-core machine two threads made each step 15x slower (0.59 s against 0.04 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def intra_fid(model: Any, datamodule: Any, settings: DictConfig, extractor: FeatureExtractor) -> dict[str, Any]:
    """Intra-class FID (as StudioGAN reports it): FID of each class's samples against that class's real images,
    and their mean. ``n_samples // classes`` samples per class (latents seeded with ``seed + class``); up to ``n_real``
    real images per class, their statistics cached per class. Every DDP rank computes it whole."""
    classes = _class_conditional(model, "intra_fid")
    per_class = settings.n_samples // classes
    if per_class < 2:
        raise MetricsError(f"intra_fid: n_samples={settings.n_samples} gives {per_class} samples per class for "
                           f"{classes} classes; at least 2 each are needed")
    fids = []
    for label in range(classes):
        real_images = datamodule.real_samples_of_class(label, settings.n_real)
        if len(real_images) < 2:
            raise MetricsError(f"intra_fid: the data has {len(real_images)} images of class {label}; at least 2 needed")
        key = StatsKey(dataset=datamodule.dataset_id, split=f"class{label}", resolution=int(real_images.shape[-1]),
                       extractor=extractor.name, num_samples=len(real_images))
        real = real_statistics(key, lambda images=real_images: extract(extractor, images, settings.batch_size).features,
                               cache_dir=settings.cache_dir)
        fake_images = model.draw_samples(per_class, settings.seed + label, label)
        if not bool(torch.isfinite(fake_images).all()):
            raise MetricsError("the generator produced non-finite samples (NaN/inf): the model diverged")
        fake = extract(extractor, fake_images, settings.batch_size)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*rank-deficient.*")
            fids.append(frechet_distance(real.mu, real.sigma, *feature_statistics(fake.features)))
    return {"intra_fid": sum(fids) / len(fids), "intra_fid_per_class": fids}


def _report(scores: dict[str, Any], fake: ExtractorOutput | None, settings: DictConfig,
            extractor: FeatureExtractor | None, real: RealStats | None, names: list[str]) -> dict[str, Any]:
    if fake is None:  # model-level metrics only
        return {**scores, **({"extractor": extractor.name} if extractor is not None else {})}
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
