"""Metric layer: FID / IS / KID math, feature extractors, cached real statistics (no Lightning here).

Typical use (what the metrics callback and ``gan-lightning evaluate`` do):

    extractor = build_extractor("inception", weights_path=cfg.callbacks.metrics.inception_weights)
    key = StatsKey("mnist", "test", 28, extractor.name, num_samples=len(real_images))
    real = real_statistics(key, lambda: extract(extractor, real_loader).features)
    scores = compute_metrics(fake_images, real, extractor, metrics="fid,is,kid")
"""

from gan_lightning.metrics.errors import MetricsError
from gan_lightning.metrics.extractors import (
    EXTRACTORS,
    ExtractorOutput,
    FeatureExtractor,
    InceptionFID,
    MNISTClassifier,
    build_extractor,
)
from gan_lightning.metrics.math import (
    class_histogram,
    feature_statistics,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
)
from gan_lightning.metrics.stats import (
    METRICS,
    MetricOptions,
    RealStats,
    StatsKey,
    compute_metrics,
    default_cache_dir,
    extract,
    parse_metrics,
    real_statistics,
)

__all__ = [
    "EXTRACTORS",
    "METRICS",
    "ExtractorOutput",
    "FeatureExtractor",
    "InceptionFID",
    "MNISTClassifier",
    "MetricOptions",
    "MetricsError",
    "RealStats",
    "StatsKey",
    "build_extractor",
    "class_histogram",
    "compute_metrics",
    "default_cache_dir",
    "extract",
    "feature_statistics",
    "frechet_distance",
    "inception_score",
    "kernel_inception_distance",
    "parse_metrics",
    "real_statistics",
]
