"""Cached real statistics and compute_metrics, including agreement with torchmetrics."""

import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from gan_lightning.files import CACHE_ENV
from gan_lightning.metrics import (
    MetricOptions,
    MetricsError,
    StatsKey,
    compute_metrics,
    default_cache_dir,
    extract,
    feature_statistics,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    parse_metrics,
    real_statistics,
)


def _images(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, 8, 8, generator=g) * 1.6 - 0.8 + shift).clamp(-1, 1)


def _stats(tiny, images, tmp_path, **key_overrides):
    calls = []

    def compute():
        calls.append(1)
        return extract(tiny, images).features

    fields = dict(dataset="fake", split="train", resolution=8, extractor=tiny.name, num_samples=len(images))
    key = StatsKey(**{**fields, **key_overrides})
    return real_statistics(key, compute, cache_dir=tmp_path), calls


def test_second_evaluation_hits_the_cache(tiny, tmp_path):
    images = _images(64, 0)
    first, calls = _stats(tiny, images, tmp_path)
    second, calls2 = _stats(tiny, images, tmp_path)
    assert not first.from_cache and second.from_cache and calls == [1] and calls2 == []
    assert torch.equal(first.mu, second.mu) and torch.equal(first.sigma, second.sigma)
    assert torch.equal(first.features, second.features) and first.mu.dtype == torch.float64
    assert first.path == second.path and first.path.parent == tmp_path


def test_cache_key_changes_with_sample_count_and_extractor(tiny, tmp_path):
    variants = [("mnist", "test", 28, "tiny", 1000), ("mnist", "test", 28, "tiny", 2000),
                ("mnist", "test", 28, "other", 1000), ("mnist", "train", 28, "tiny", 1000),
                ("mnist", "test", 32, "tiny", 1000), ("celeba", "test", 28, "tiny", 1000)]
    names = {StatsKey(*v).filename() for v in variants}
    assert len(names) == 6
    images = _images(64, 0)
    _stats(tiny, images, tmp_path)
    fewer, calls = _stats(tiny, images[:32], tmp_path)
    assert not fewer.from_cache and calls == [1]
    other, calls = _stats(tiny, images, tmp_path, extractor="tiny-v2")
    assert not other.from_cache and calls == [1]


def test_cache_dir_from_environment(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    assert default_cache_dir() == tmp_path / "cache" / "stats"
    key = StatsKey("fake", "train", 8, tiny.name, 16)
    stats = real_statistics(key, lambda: extract(tiny, _images(16, 0)).features)
    assert stats.path.parent == tmp_path / "cache" / "stats" and stats.path.is_file()


def test_corrupt_cache_file_is_recomputed(tiny, tmp_path):
    images = _images(32, 0)
    first, _ = _stats(tiny, images, tmp_path)
    first.path.write_bytes(b"truncated")
    with pytest.warns(UserWarning, match="ignoring cached statistics"):
        again, calls = _stats(tiny, images, tmp_path)
    assert calls == [1] and torch.equal(again.mu, first.mu)


def test_wrong_sample_count_is_refused(tiny, tmp_path):
    key = StatsKey("fake", "train", 8, tiny.name, 100)
    with pytest.raises(MetricsError, match=r"expected \(100, D\)"):
        real_statistics(key, lambda: torch.zeros(50, 16), cache_dir=tmp_path)


def test_metric_names_are_validated():
    assert parse_metrics("fid, IS,kid,fid") == ["fid", "is", "kid"]
    with pytest.raises(MetricsError, match=r"unknown metric\(s\) \['lpips'\]; accepted: fid, is, kid, precision"):
        parse_metrics(["fid", "lpips"])
    with pytest.raises(MetricsError, match="accepted"):
        parse_metrics("")


def test_compute_metrics_equals_the_math_on_extracted_features(tiny, tmp_path):
    real, _ = _stats(tiny, _images(200, 0), tmp_path)
    fake = _images(150, 1, shift=0.2)
    opts = MetricOptions(is_splits=3, kid_subsets=10, kid_subset_size=100, seed=5)
    scores = compute_metrics(fake, real, tiny, batch_size=40, options=opts)
    assert list(scores) == ["fid", "is", "is_std", "kid", "kid_std"]
    out = tiny(fake)
    assert scores["fid"] == pytest.approx(frechet_distance(real.mu, real.sigma, *feature_statistics(out.features)))
    assert (scores["is"], scores["is_std"]) == pytest.approx(inception_score(out.logits, splits=3))
    kid = kernel_inception_distance(real.features, out.features, subsets=10, subset_size=100, seed=5)
    assert (scores["kid"], scores["kid_std"]) == pytest.approx(kid)
    # A DataLoader-style iterable of (images, labels) batches gives the same numbers.
    batches = [(fake[i : i + 50], torch.zeros(50)) for i in range(0, 150, 50)]
    assert compute_metrics(batches, real, tiny, options=opts) == pytest.approx(scores)


def test_compute_metrics_guards(tiny, tmp_path):
    real, _ = _stats(tiny, _images(32, 0), tmp_path, extractor="inception-fid-v3-bilinear299")
    with pytest.raises(MetricsError, match="would not be comparable"):
        compute_metrics(_images(32, 1), real, tiny, metrics="fid")
    with pytest.raises(MetricsError, match="need real statistics"):
        compute_metrics(_images(32, 1), None, tiny, metrics="kid")
    assert set(compute_metrics(_images(32, 1), None, tiny, metrics="is")) == {"is", "is_std"}


class _Features(torch.nn.Module):
    """torchmetrics' `feature=` hook: the tiny extractor's features (or logits) in float64."""

    def __init__(self, extractor, logits: bool = False) -> None:
        super().__init__()
        self.extractor, self.logits = extractor, logits
        self.num_features = extractor.num_classes if logits else extractor.feature_dim

    def forward(self, x):
        out = self.extractor(x)
        return (out.logits if self.logits else out.features).double()


@pytest.mark.filterwarnings("ignore:Metric `.*` will save all extracted features", "ignore:std\\(\\)")
def test_agrees_with_torchmetrics(tiny, tmp_path):
    real_images, fake_images = _images(300, 0), _images(200, 1, shift=0.3)
    real, _ = _stats(tiny, real_images, tmp_path)
    ours = compute_metrics(fake_images, real, tiny, metrics="fid,is", options=MetricOptions(is_splits=1))

    fid = FrechetInceptionDistance(feature=_Features(tiny))
    fid.update(real_images, real=True)
    fid.update(fake_images, real=False)
    assert ours["fid"] == pytest.approx(fid.compute().item(), rel=1e-6)

    # subset_size = len(fake) and 1 split: both sides are permutation-invariant, so seeds do not matter.
    kid = KernelInceptionDistance(feature=_Features(tiny), subsets=2, subset_size=200)
    kid.update(real_images[:200], real=True)
    kid.update(fake_images, real=False)
    real200, _ = _stats(tiny, real_images[:200], tmp_path)
    ours200 = compute_metrics(fake_images, real200, tiny, metrics="kid",
                              options=MetricOptions(kid_subsets=2, kid_subset_size=200))
    assert ours200["kid"] == pytest.approx(kid.compute()[0].item(), rel=1e-6)

    inception = InceptionScore(feature=_Features(tiny, logits=True), splits=1)
    inception.update(fake_images)
    assert ours["is"] == pytest.approx(inception.compute()[0].item(), rel=1e-6)


def test_cached_kid_real_terms_give_the_same_kid(tmp_path):
    """KID's real-real kernel terms are stored with the statistics; using them changes no digit."""
    from gan_lightning.metrics.math import kernel_inception_distance
    from gan_lightning.metrics.stats import StatsKey, kid_terms_key, real_statistics

    torch.manual_seed(0)
    real, fake = torch.randn(1200, 8), torch.randn(1100, 8) + 0.2
    key = StatsKey("toy", "all", 8, "identity", num_samples=1200)
    first = real_statistics(key, lambda: real, cache_dir=tmp_path)
    second = real_statistics(key, lambda: real, cache_dir=tmp_path)
    assert second.from_cache and set(second.kid_terms) == {kid_terms_key(100, 1000, 0)}
    terms = second.kid_terms[kid_terms_key(100, 1000, 0)]
    torch.testing.assert_close(terms, first.kid_terms[kid_terms_key(100, 1000, 0)])
    fresh = kernel_inception_distance(second.features, fake)
    cached = kernel_inception_distance(second.features, fake, real_terms=terms)
    assert cached == pytest.approx(fresh, rel=1e-12)
