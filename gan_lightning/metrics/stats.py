"""Real-data statistics cached on disk, and the one call that scores generated images.

Real statistics (mu, sigma, a feature sample for KID and the k-NN metrics) depend only on (dataset, split,
resolution, extractor, sample count), so they are computed once and stored under the cache directory:
``$GAN_LIGHTNING_CACHE/stats`` if that variable is set, else ``~/.cache/gan_lightning/stats``.
Files are written to a temporary name and renamed, so a crash or two DDP ranks writing at once never leave a
truncated file; an unreadable or mismatching file is recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gan_lightning.files import atomic_torch_save, cache_root
from gan_lightning.metrics.errors import MetricsError
from gan_lightning.metrics.extractors import ExtractorOutput, FeatureExtractor
from gan_lightning.metrics.manifold import density_coverage, knn_radii, precision_recall
from gan_lightning.metrics.math import (
    feature_statistics,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    kid_real_terms,
)

STATS_FORMAT = 2  # bump when the stored layout or the statistics' definition changes
KID_FEATURES = 10_000  # real feature rows kept for KID (a seeded random subset when there are more)


def default_cache_dir() -> Path:
    return cache_root() / "stats"


@dataclass(frozen=True)
class StatsKey:
    """What real statistics depend on. ``dataset`` must identify the data (e.g. "mnist", or "folder:<root>")."""

    dataset: str
    split: str
    resolution: int | tuple[int, int]
    extractor: str  # FeatureExtractor.name, which encodes its weights and preprocessing
    num_samples: int

    def canonical(self) -> str:
        return json.dumps({**asdict(self), "format": STATS_FORMAT}, sort_keys=True)

    def filename(self) -> str:
        res = "x".join(map(str, self.resolution)) if isinstance(self.resolution, tuple) else str(self.resolution)
        readable = "_".join([self.dataset, self.split, res, self.extractor, f"n{self.num_samples}"])
        readable = re.sub(r"[^A-Za-z0-9.-]+", "-", readable)[:120]
        # The readable part is for humans (and may be truncated); the digest is what makes the name unique.
        return f"{readable}_{hashlib.sha256(self.canonical().encode()).hexdigest()[:16]}.pt"


@dataclass
class RealStats:
    key: StatsKey
    mu: Tensor  # float64 (D,)
    sigma: Tensor  # float64 (D, D)
    features: Tensor  # float32 (min(N, kid_features), D): the sample KID compares against
    from_cache: bool = False
    path: Path | None = None
    # KID's real-real kernel terms per subset, for the default options (see kid_terms_key): cached too.
    kid_terms: dict[str, Tensor] = field(default_factory=dict)
    # k-NN radii of ``features`` for precision/recall and density/coverage, by knn_radii_key(k): added to the cache
    # file the first time a k is asked for.
    knn_radii: dict[str, Tensor] = field(default_factory=dict)


def kid_terms_key(subsets: int, subset_size: int, seed: int) -> str:
    return f"subsets={subsets},size={subset_size},seed={seed},kernel=poly3"


def knn_radii_key(k: int) -> str:
    return f"k={k},euclidean"


def real_knn_radii(real: RealStats, k: int, device: torch.device | str = "cpu") -> Tensor:
    """The k-NN radii of the real feature sample, from the statistics file when it has them for this ``k``; else
    computed (the O(N^2) part of precision/recall) and written into the file beside the others."""
    key = knn_radii_key(k)
    if key not in real.knn_radii:
        real.knn_radii[key] = knn_radii(real.features.to(device), k).cpu()
        if real.path is not None:
            _save(real, real.path.parent)
    return real.knn_radii[key]


def _save(stats: RealStats, cache_dir: Path) -> None:
    try:
        atomic_torch_save({"key": stats.key.canonical(), "mu": stats.mu, "sigma": stats.sigma,
                           "features": stats.features, "kid_terms": stats.kid_terms, "knn_radii": stats.knn_radii},
                          cache_dir / stats.key.filename())
    except OSError as error:
        raise MetricsError(f"callbacks.metrics.cache_dir: cannot write real statistics to {cache_dir} "
                           f"({error.strerror or type(error).__name__}); set cache_dir (or --cache-dir) to a writable "
                           "folder") from None


def _load(path: Path, key: StatsKey, kid_rows: int) -> RealStats | None:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        if data["key"] != key.canonical() or data["features"].shape[0] < kid_rows:
            raise ValueError("stored key or feature count does not match")
        return RealStats(key, data["mu"], data["sigma"], data["features"], from_cache=True, path=path,
                         kid_terms=dict(data.get("kid_terms", {})), knn_radii=dict(data.get("knn_radii", {})))
    except Exception as exc:  # corrupt, foreign or stale file: recompute rather than trust it
        warnings.warn(f"ignoring cached statistics {path} ({type(exc).__name__}: {exc}); recomputing", stacklevel=3)
        return None


def real_statistics(
    key: StatsKey,
    compute_features: Callable[[], Tensor],
    cache_dir: str | Path | None = None,
    kid_features: int = KID_FEATURES,
    seed: int = 0,
) -> RealStats:
    """Cached real statistics for ``key``; ``compute_features()`` (returning (num_samples, D)) runs on a miss.

    The result's ``from_cache`` tells whether the cache was hit.
    """
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = cache_dir / key.filename()
    kid_rows = min(kid_features, key.num_samples)
    if path.is_file() and (hit := _load(path, key, kid_rows)) is not None:
        return hit

    features = torch.as_tensor(compute_features()).detach()
    if features.dim() != 2 or features.shape[0] != key.num_samples:
        raise MetricsError(f"real features for {key.dataset}/{key.split}: expected ({key.num_samples}, D), got "
                           f"{tuple(features.shape)}; the key's num_samples must be the number of images used")
    mu, sigma = feature_statistics(features)
    keep = torch.randperm(features.shape[0], generator=torch.Generator().manual_seed(seed))[:kid_rows]
    kept = features[keep.to(features.device)].float().cpu()
    defaults = MetricOptions()
    size = min(defaults.kid_subset_size, kept.shape[0])  # KID's subset size whenever the fakes are as many
    terms = {kid_terms_key(defaults.kid_subsets, size, defaults.seed): kid_real_terms(
        kept.double(), defaults.kid_subsets, size, seed=defaults.seed).cpu()} if size >= 2 else {}
    stats = RealStats(key, mu.cpu(), sigma.cpu(), kept, from_cache=False, path=path, kid_terms=terms)
    _save(stats, cache_dir)
    return stats


ImagesLike = Tensor | Iterable[Tensor] | Iterable[Sequence[Tensor]]


def extract(extractor: FeatureExtractor, images: ImagesLike, batch_size: int = 100) -> ExtractorOutput:
    """Run ``extractor`` over a (N, C, H, W) tensor (in batches) or an iterable of batches.

    Batches may be tensors or (images, labels, ...) tuples as DataLoaders yield; outputs stay on the
    extractor's device.
    """
    batches = images.split(batch_size) if torch.is_tensor(images) else images
    features, logits = [], []
    for batch in batches:
        x = batch if torch.is_tensor(batch) else batch[0]
        out = extractor(x)
        features.append(out.features)
        logits.append(out.logits)
    if not features:
        raise MetricsError("no images to evaluate")
    return ExtractorOutput(torch.cat(features), torch.cat(logits))


@dataclass
class MetricOptions:
    is_splits: int = 10
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    seed: int = 0
    precision_recall_k: int = 3  # Kynkaanniemi et al. 2019 (stylegan2-ada's pr50k3)
    density_coverage_k: int = 5  # Naeem et al. 2020

    @classmethod
    def from_settings(cls, settings: Any) -> MetricOptions:
        """The options a ``callbacks.metrics`` section sets; the others keep their defaults (its ``seed`` is the
        latents' seed, not KID's subset seed)."""
        chosen = ("precision_recall_k", "density_coverage_k")
        return cls(**{name: settings[name] for name in chosen if name in settings})


def _fid(fake: ExtractorOutput, real: RealStats, opts: MetricOptions) -> dict[str, float]:
    mu, sigma = feature_statistics(fake.features)
    return {"fid": frechet_distance(real.mu, real.sigma, mu, sigma)}


def _is(fake: ExtractorOutput, real: RealStats | None, opts: MetricOptions) -> dict[str, float]:
    mean, std = inception_score(fake.logits, splits=opts.is_splits, from_logits=True)
    return {"is": mean, "is_std": std}


def _kid(fake: ExtractorOutput, real: RealStats, opts: MetricOptions) -> dict[str, float]:
    # KID runs where the fake features are (the GPU during training): it is 100 subsets of matmuls.
    size = min(opts.kid_subset_size, real.features.shape[0], fake.features.shape[0])
    cached = real.kid_terms.get(kid_terms_key(opts.kid_subsets, size, opts.seed))
    mean, std = kernel_inception_distance(real.features.to(fake.features.device), fake.features,
                                          subsets=opts.kid_subsets, subset_size=opts.kid_subset_size,
                                          seed=opts.seed, real_terms=cached)
    return {"kid": mean, "kid_std": std}


def _knn_metric(function: Callable[..., dict[str, float]], k_option: str) -> Callable[..., dict[str, float]]:
    """precision_recall or density_coverage against the real feature sample, with its k-NN radii from the cache."""
    def compute(fake: ExtractorOutput, real: RealStats, opts: MetricOptions) -> dict[str, float]:
        k, device = getattr(opts, k_option), fake.features.device
        return function(real.features.to(device), fake.features, k, real_knn_radii(real, k, device))
    return compute


_precision_recall = _knn_metric(precision_recall, "precision_recall_k")
_density_coverage = _knn_metric(density_coverage, "density_coverage_k")


ModelLevel = Callable[[Any, Any, Any, FeatureExtractor | None], dict[str, Any]]


@dataclass(frozen=True)
class MetricSpec:
    """One registered metric: ``compute(fake, real_stats, options)`` returns a dict holding ``keys`` (and maybe the
    keys of sibling metrics computed by the same function, e.g. recall with precision: the function runs once).

    A model-level metric (intra-class FID, CAS, PPL) has ``compute=None`` and ``model_level(model, datamodule,
    settings, extractor)`` instead: it draws its own samples. ``check_model(model)`` refuses a model it cannot
    measure (one ``MetricsError`` line) before any metric does work; ``uses_extractor=False`` means it never touches
    the feature extractor (none is built for it alone)."""

    compute: Callable[[ExtractorOutput, RealStats | None, MetricOptions], dict[str, float]] | None
    keys: tuple[str, ...]
    needs_real: bool
    fewest_samples: Callable[[MetricOptions], tuple[int, str]]
    better: str = "lower"  # "lower" or "higher": how a sweep ranks runs by it
    model_level: ModelLevel | None = None
    check_model: Callable[[Any], None] | None = None
    uses_extractor: bool = True


def _deferred(module: str, function: str) -> Callable[..., Any]:
    """``module.function``, imported at its first call: model-level metrics live beside the model code they need,
    which imports this registry."""
    def call(*args: Any) -> Any:
        return getattr(importlib.import_module(module), function)(*args)
    call.__qualname__ = f"{module}.{function}"
    return call


def _knn_need(what: str, attribute: str) -> Callable[[MetricOptions], tuple[int, str]]:
    return lambda opts: (getattr(opts, attribute) + 1,
                         f"{what} needs the {getattr(opts, attribute)}-th nearest neighbour of every sample")


# The registry: name -> spec. A metric elsewhere in the package plugs in with ``register_metric``.
METRICS: dict[str, MetricSpec] = {
    "fid": MetricSpec(_fid, ("fid",), True, lambda o: (2, "fid estimates a covariance from the samples")),
    "is": MetricSpec(_is, ("is", "is_std"), False,
                     lambda o: (o.is_splits, f"is scores {o.is_splits} splits of the samples"), better="higher"),
    "kid": MetricSpec(_kid, ("kid", "kid_std"), True, lambda o: (2, "kid compares pairs of samples")),
    "precision": MetricSpec(_precision_recall, ("precision",), True, _knn_need("precision", "precision_recall_k"),
                            better="higher"),
    "recall": MetricSpec(_precision_recall, ("recall",), True, _knn_need("recall", "precision_recall_k"),
                         better="higher"),
    "density": MetricSpec(_density_coverage, ("density",), True, _knn_need("density", "density_coverage_k"),
                          better="higher"),
    "coverage": MetricSpec(_density_coverage, ("coverage",), True, _knn_need("coverage", "density_coverage_k"),
                           better="higher"),
    "intra_fid": MetricSpec(None, ("intra_fid",), False,
                            lambda o: (2, "intra_fid estimates a covariance from the samples of each class"),
                            model_level=_deferred("gan_lightning.evaluation", "intra_fid"),
                            check_model=_deferred("gan_lightning.evaluation", "check_intra_fid")),
    "cas": MetricSpec(None, ("cas", "cas_real"), False, lambda o: (1, ""), better="higher",
                      model_level=_deferred("gan_lightning.evaluation", "classification_accuracy_score"),
                      check_model=_deferred("gan_lightning.evaluation", "check_cas"), uses_extractor=False),
    "ppl": MetricSpec(None, ("ppl",), False,
                      lambda o: (100, "ppl drops the path lengths below the 1st and above the 99th percentile"),
                      model_level=_deferred("gan_lightning.evaluation", "path_length"),
                      check_model=_deferred("gan_lightning.metrics.ppl", "check_model"), uses_extractor=False),
}


def score_keys() -> dict[str, str]:
    """Every key a registered metric reports -> "lower" or "higher" (which way is better; a spread such as is_std
    counts as lower)."""
    return {key: spec.better if key == name else "lower" for name, spec in METRICS.items() for key in spec.keys}


def register_metric(name: str, spec: MetricSpec) -> None:
    """Add a metric to the registry: the callback, ``evaluate --metrics`` and the config check accept it from then
    on. A name already taken is refused (two metrics silently answering to one name would be a wrong number)."""
    if name in METRICS and METRICS[name] != spec:
        raise MetricsError(f"metric {name!r} is already registered")
    METRICS[name] = spec


def parse_metrics(metrics: str | Iterable[str]) -> list[str]:
    """Validate metric names ("fid,is" or ["fid", "is"]); unknown names raise MetricsError listing accepted ones."""
    names = [m.strip().lower() for m in (metrics.split(",") if isinstance(metrics, str) else metrics)]
    names = [m for m in dict.fromkeys(names) if m]  # de-duplicate, keep order
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise MetricsError(f"unknown metric(s) {unknown or metrics!r}; accepted: {', '.join(METRICS)}")
    return names


def fewest_samples(metrics: str | Iterable[str], options: MetricOptions | None = None) -> tuple[int, str]:
    """The fewest generated samples ``metrics`` can score and why (the most demanding metric's reason; "" when one
    sample is enough). Unknown names are left to ``parse_metrics``'s message."""
    opts = options or MetricOptions()
    try:
        names = parse_metrics(metrics)
    except MetricsError:
        return 1, ""
    return max((METRICS[name].fewest_samples(opts) for name in names), key=lambda need: need[0])


def needs_real_stats(metrics: str | Iterable[str]) -> bool:
    """Whether any of these metrics compares against real statistics (FID, KID, ...) rather than fakes alone (IS)."""
    return any(METRICS[m].needs_real for m in parse_metrics(metrics))


def needs_extractor(metrics: str | Iterable[str]) -> bool:
    """Whether any of these metrics scores features (all but those that train or measure on their own, CAS, PPL)."""
    return any(METRICS[m].uses_extractor for m in parse_metrics(metrics))


def compute_metrics(
    fake: ImagesLike,
    real_stats: RealStats | None,
    extractor: FeatureExtractor,
    metrics: str | Iterable[str] = ("fid", "is", "kid"),
    batch_size: int = 100,
    options: MetricOptions | None = None,
) -> dict[str, float]:
    """Score generated images (data space [-1, 1]): {"fid", "is", "is_std", "kid", "kid_std"} as requested."""
    names = parse_metrics(metrics)
    check_real_stats(names, real_stats, extractor.name)
    return scores_from_output(extract(extractor, fake, batch_size), real_stats, names, options)


def check_real_stats(names: list[str], real_stats: RealStats | None, extractor_name: str) -> None:
    if needs_real_stats(names):
        if real_stats is None:
            raise MetricsError(f"metrics {names} need real statistics, got none")
        if real_stats.key.extractor != extractor_name:
            raise MetricsError(f"real statistics were computed with extractor {real_stats.key.extractor!r}, "
                               f"not {extractor_name!r}: scores would not be comparable")


def scores_from_output(fake: ExtractorOutput, real_stats: RealStats | None, metrics: str | Iterable[str],
                       options: MetricOptions | None = None, extractor_name: str | None = None) -> dict[str, float]:
    """The scores from already-extracted fake features/logits (callers that also need the logits)."""
    names = parse_metrics(metrics)
    if extractor_name is not None:
        check_real_stats(names, real_stats, extractor_name)
    opts = options or MetricOptions()
    computed: dict[Callable, dict[str, float]] = {}  # precision and recall (or density and coverage) share one run
    result: dict[str, float] = {}
    for name in names:
        spec = METRICS[name]
        if spec.compute is None:  # model-level: not from these features
            continue
        if spec.compute not in computed:
            computed[spec.compute] = spec.compute(fake, real_stats, opts)
        result.update({key: computed[spec.compute][key] for key in spec.keys})
    return result
