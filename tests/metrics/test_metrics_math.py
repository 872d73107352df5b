"""FID / IS / KID math against independent references (scipy sqrtm, closed forms, explicit loops)."""

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from gan_lightning.metrics import math as mmath
from gan_lightning.metrics.errors import MetricsError
from gan_lightning.metrics.math import (
    class_histogram,
    feature_statistics,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
)


def _scipy_fid(x: np.ndarray, y: np.ndarray) -> float:
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_feature_statistics_match_numpy():
    x = np.random.default_rng(0).normal(size=(300, 20))
    mu, sigma = feature_statistics(torch.tensor(x, dtype=torch.float32))
    assert mu.dtype == sigma.dtype == torch.float64
    np.testing.assert_allclose(mu.numpy(), x.astype(np.float32).mean(0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(sigma.numpy(), np.cov(x.astype(np.float32), rowvar=False), rtol=1e-6, atol=1e-7)


def test_rank_deficient_covariance_warns_once(monkeypatch):
    monkeypatch.setattr(mmath, "_rank_warned", set())
    x = torch.randn(10, 32)
    with pytest.warns(mmath.RankDeficientCovarianceWarning, match="10 samples for 32-d"):
        feature_statistics(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        feature_statistics(x)  # same shape again: no second warning
        feature_statistics(torch.randn(40, 32))  # n >= d: never warns


def test_fid_matches_scipy_reference():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 64))
    y = rng.normal(size=(500, 64)) @ rng.normal(scale=0.3, size=(64, 64)) + 0.5
    ref = _scipy_fid(x, y)
    ours = frechet_distance(*feature_statistics(x), *feature_statistics(y))
    assert abs(ours - ref) / ref <= 1e-6


def test_fid_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(2).normal(size=(400, 32))
    mu, sigma = feature_statistics(x)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)
    # Rank-deficient (n < d) covariances: eigen-clipping keeps it real, finite and ~0.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mmath.RankDeficientCovarianceWarning)
        small = feature_statistics(x[:10])
        assert frechet_distance(*small, *small) == pytest.approx(0.0, abs=1e-8)


def test_fid_of_gaussians_matches_closed_form():
    rng = np.random.default_rng(3)
    d = 50
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = rng.uniform(0.1, 3.0, size=d), rng.uniform(0.1, 3.0, size=d)
    expected = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)
    # A common rotation changes neither the distance nor the closed form.
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    rotated = frechet_distance(q @ mu1, q @ np.diag(s1) @ q.T, q @ mu2, q @ np.diag(s2) @ q.T)
    assert rotated == pytest.approx(expected, rel=1e-9)


def test_fid_is_symmetric_and_checks_shapes():
    rng = np.random.default_rng(4)
    a, b = feature_statistics(rng.normal(size=(200, 8))), feature_statistics(rng.normal(size=(200, 8)) * 2)
    assert frechet_distance(*a, *b) == pytest.approx(frechet_distance(*b, *a), rel=1e-10)
    with pytest.raises(MetricsError, match="shape mismatch"):
        frechet_distance(a[0], a[1], np.zeros(9), np.eye(9))


def test_inception_score_of_uniform_predictions_is_one():
    probs = torch.full((100, 10), 0.1)
    mean, std = inception_score(probs, splits=10)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("k", [1, 4, 10])
def test_inception_score_of_confident_balanced_predictions_is_k(k):
    labels = torch.arange(k * 50) % k  # cyclic: each of the 5 splits sees every class 10 times
    probs = torch.nn.functional.one_hot(labels, 10).double()
    mean, std = inception_score(probs, splits=5)
    assert mean == pytest.approx(k, rel=1e-12) and std == pytest.approx(0.0, abs=1e-9)
    # Logits saying the same thing (very peaked) give the same score.
    logits_mean, _ = inception_score(probs * 60.0, splits=5, from_logits=True)
    assert logits_mean == pytest.approx(k, rel=1e-9)


def test_inception_score_detects_probs_vs_logits():
    logits = torch.randn(200, 7)
    probs = logits.softmax(1)
    assert inception_score(logits, splits=4) == pytest.approx(inception_score(probs, splits=4), rel=1e-5)
    with pytest.raises(MetricsError, match="splits"):
        inception_score(probs, splits=500)


def _reference_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD^2 of Binkowski et al., as explicit sums, with k(a, b) = (a.b / d + 1)^3."""
    m, d = len(x), x.shape[1]

    def k(a, b):
        return (a @ b / d + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_reference_loop():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(40, 6)), rng.normal(loc=0.3, size=(40, 6))
    # subset_size = n: every subset is the whole set (order does not matter), so the loop is the reference.
    mean, std = kernel_inception_distance(x, y, subsets=3, subset_size=40)
    assert mean == pytest.approx(_reference_mmd2(x, y), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_kid_near_zero_for_identical_distributions():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(1000, 16))
    same, _ = kernel_inception_distance(x, x, subsets=20, subset_size=200)
    fresh, _ = kernel_inception_distance(x, rng.normal(size=(1000, 16)), subsets=20, subset_size=200)
    shifted, _ = kernel_inception_distance(x, x + 0.5, subsets=20, subset_size=200)
    assert shifted > 0.1
    assert abs(fresh) < 1e-2 * shifted
    # Subsets of one set share ~m^2/n rows; a shared row's k(x, x) only enters the cross term, so KID(X, X)
    # is slightly negative, about -2 (mean k(x, x) - mean k(x, y)) / n, not exactly 0.
    assert abs(same) < 3e-2 * shifted


def test_kid_is_seeded_and_clips_subset_size():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(300, 8)), rng.normal(size=(50, 8))
    a = kernel_inception_distance(x, y, subsets=5, subset_size=1000, seed=3)
    assert a == kernel_inception_distance(x, y, subsets=5, subset_size=1000, seed=3)
    assert a != kernel_inception_distance(x, y, subsets=5, subset_size=1000, seed=4)
    with pytest.raises(MetricsError, match="feature dims differ"):
        kernel_inception_distance(x, rng.normal(size=(50, 9)))


def test_class_histogram_counts_argmax():
    logits = torch.eye(10)[torch.tensor([0, 0, 3, 9])] * 5
    assert class_histogram(logits).tolist() == [2, 0, 0, 1, 0, 0, 0, 0, 0, 1]
