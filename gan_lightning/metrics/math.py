"""FID, IS and KID math: pure torch, float64, no Lightning and no networks.

Inputs may be torch tensors (any device) or numpy arrays; everything is promoted to float64 before any
reduction, because FID is a difference of large traces and float32 loses whole FID points at 2048-d.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

from gan_lightning.metrics.errors import MetricsError

ArrayLike = Tensor | np.ndarray


class RankDeficientCovarianceWarning(UserWarning):
    """Fewer samples than feature dimensions: the covariance is singular and FID is biased upwards."""


# (n, d) pairs already warned about: a training loop evaluating every epoch warns once, not every time.
_rank_warned: set[tuple[int, int]] = set()


def _f64(x: ArrayLike) -> Tensor:
    return torch.as_tensor(x).detach().to(torch.float64)


def _features_2d(x: ArrayLike, what: str) -> Tensor:
    t = _f64(x)
    if t.dim() != 2:
        raise MetricsError(f"{what} must be a 2-D (N, D) feature matrix, got shape {tuple(t.shape)}")
    return t


def feature_statistics(features: ArrayLike) -> tuple[Tensor, Tensor]:
    """Mean and unbiased covariance (like ``numpy.cov(rowvar=False)``) of an (N, D) matrix, in float64."""
    x = _features_2d(features, "features")
    n, d = x.shape
    if n < 2:
        raise MetricsError(f"feature_statistics needs at least 2 samples, got {n}")
    if n < d and (n, d) not in _rank_warned:
        _rank_warned.add((n, d))
        warnings.warn(
            f"{n} samples for {d}-d features: the covariance is rank-deficient, FID is biased upwards "
            f"and not comparable with FIDs computed on >= {d} samples",
            RankDeficientCovarianceWarning,
            stacklevel=2,
        )
    mu = x.mean(dim=0)
    centred = x - mu
    sigma = centred.T @ centred / (n - 1)
    return mu, sigma


def _psd_sqrt(sigma: Tensor) -> Tensor:
    """Symmetric square root of a covariance matrix; tiny negative eigenvalues from round-off become 0."""
    evals, evecs = torch.linalg.eigh(sigma)
    return (evecs * evals.clamp_min(0).sqrt()) @ evecs.T


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    d^2 = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2}).

    Method for the last term: S1 S2 is not symmetric, so a general ``sqrtm`` (scipy) or ``eigvals`` on it
    can return complex round-off and fails on singular covariances (N < D). Instead we use the similar
    *symmetric* PSD matrix M = S1^{1/2} S2 S1^{1/2} (same eigenvalues as S1 S2), diagonalise it with ``eigh``
    (stable, real), clip eigenvalues at 0 and sum their square roots: tr((S1 S2)^{1/2}) = sum sqrt(eig(M)).
    """
    mu1, mu2 = _f64(mu1).flatten(), _f64(mu2).flatten()
    s1, s2 = _f64(sigma1), _f64(sigma2)
    d = mu1.numel()
    if mu2.numel() != d or s1.shape != (d, d) or s2.shape != (d, d):
        raise MetricsError(
            f"frechet_distance: shape mismatch mu1 {tuple(mu1.shape)}, sigma1 {tuple(s1.shape)}, "
            f"mu2 {tuple(mu2.shape)}, sigma2 {tuple(s2.shape)}"
        )
    s2 = s2.to(s1.device)
    # Covariances are symmetric in exact arithmetic; symmetrise so eigh sees exactly what it assumes.
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
    root1 = _psd_sqrt(s1)
    m = root1 @ s2 @ root1
    tr_covmean = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()
    diff = mu1 - mu2.to(mu1.device)
    fid = diff.dot(diff) + s1.trace() + s2.trace() - 2 * tr_covmean
    # Round-off can make FID(X, X) a tiny negative number; a distance is never negative.
    return max(float(fid), 0.0)


def _log_probs(probs_or_logits: ArrayLike, from_logits: bool | None) -> Tensor:
    x = _features_2d(probs_or_logits, "probs_or_logits")
    if from_logits is None:
        # Rows of a probability matrix lie in [0, 1] and sum to 1; logits essentially never do.
        looks_like_probs = bool(((x >= 0) & (x <= 1)).all()) and bool(
            torch.allclose(x.sum(dim=1), torch.ones(x.shape[0], dtype=x.dtype, device=x.device), atol=1e-4)
        )
        from_logits = not looks_like_probs
    if from_logits:
        return torch.log_softmax(x, dim=1)
    return torch.log(x / x.sum(dim=1, keepdim=True))


def inception_score(
    probs_or_logits: ArrayLike, splits: int = 10, from_logits: bool | None = None
) -> tuple[float, float]:
    """Inception Score exp(E_x KL(p(y|x) || p(y))) per split; returns (mean, std) over the splits.

    Follows the reference (Salimans et al. 2016) code: consecutive splits of N // splits-ish samples,
    p(y) is the marginal within the split, std is the population std (ddof=0). ``from_logits=None`` detects
    whether rows are probabilities (non-negative, summing to 1) or logits.
    """
    log_p = _log_probs(probs_or_logits, from_logits)
    n = log_p.shape[0]
    if not 1 <= splits <= n:
        raise MetricsError(f"inception_score: splits must be in [1, {n}] for {n} samples, got {splits}")
    scores = []
    for i in range(splits):
        part = log_p[i * n // splits : (i + 1) * n // splits]
        log_py = torch.logsumexp(part, dim=0) - np.log(part.shape[0])  # log of the mean of p(y|x)
        # xlogy-style: classes with p(y|x) = 0 contribute 0, not nan (exp(-inf) * -inf).
        p = part.exp()
        kl = torch.where(p > 0, p * (part - log_py), torch.zeros_like(p)).sum(dim=1)
        scores.append(kl.mean().exp())
    s = torch.stack(scores)
    return float(s.mean()), float(s.std(unbiased=False))


def _kernel(a: Tensor, b: Tensor, degree: int, gamma: float, coef: float) -> Tensor:
    return (a @ b.T * gamma + coef) ** degree


def _within_mean(a: Tensor, degree: int, gamma: float, coef: float) -> Tensor:
    """Mean of k(a_i, a_j) over i != j: the unbiased within-set term of MMD^2."""
    k = _kernel(a, a, degree, gamma, coef)
    m = a.shape[0]
    return (k.sum() - k.diagonal().sum()) / (m * (m - 1))


def _polynomial_mmd2(x: Tensor, y: Tensor, degree: int, gamma: float, coef: float,
                     x_within: Tensor | None = None) -> Tensor:
    """Unbiased MMD^2 estimate with k(a, b) = (gamma a.b + coef)^degree (diagonals of K_xx, K_yy excluded)."""
    if x_within is None:
        x_within = _within_mean(x, degree, gamma, coef)
    return x_within + _within_mean(y, degree, gamma, coef) - 2 * _kernel(x, y, degree, gamma, coef).mean()


# Real and fake subsets are drawn from two generators, so the real-side draws (and with them the real-real
# kernel terms, a third of KID's work) depend only on the real set and can be cached with its statistics.
_FAKE_SEED_OFFSET = 1_000_003


def kid_real_terms(f_real: ArrayLike, subsets: int, subset_size: int, degree: int = 3, gamma: float | None = None,
                   coef: float = 1.0, seed: int = 0) -> Tensor:
    """The within-real term of every KID subset, for ``kernel_inception_distance(..., real_terms=...)``.

    ``subset_size`` must be the size KID will use: min(subset_size, n_real, n_fake).
    """
    x = _features_2d(f_real, "f_real")
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    gen = torch.Generator().manual_seed(seed)
    terms = [_within_mean(x[torch.randperm(x.shape[0], generator=gen)[:subset_size].to(x.device)], degree, gamma,
                          coef) for _ in range(subsets)]
    return torch.stack(terms)


def kernel_inception_distance(
    f_real: ArrayLike,
    f_fake: ArrayLike,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
    seed: int = 0,
    real_terms: Tensor | None = None,
) -> tuple[float, float]:
    """KID (Binkowski et al. 2018): unbiased polynomial-kernel MMD^2 averaged over random subsets.

    Each subset draws ``subset_size`` rows without replacement from each set (clipped to the smaller set);
    ``gamma=None`` means 1 / D, i.e. the standard kernel (x.y / D + 1)^3. Returns (mean, std) over subsets
    (population std). The subset draws come from CPU generators seeded with ``seed``: reproducible.
    ``real_terms`` (from :func:`kid_real_terms` with the same arguments) skips the real-real kernels.
    """
    x, y = _features_2d(f_real, "f_real"), _features_2d(f_fake, "f_fake")
    if x.shape[1] != y.shape[1]:
        raise MetricsError(f"KID: feature dims differ: real {x.shape[1]}, fake {y.shape[1]}")
    y = y.to(x.device)
    m = min(subset_size, x.shape[0], y.shape[0])
    if m < 2:
        raise MetricsError(f"KID needs at least 2 samples per set, got real {x.shape[0]}, fake {y.shape[0]}")
    if subsets < 1:
        raise MetricsError(f"KID: subsets must be >= 1, got {subsets}")
    if real_terms is not None and real_terms.shape != (subsets,):
        raise MetricsError(f"KID: real_terms has shape {tuple(real_terms.shape)}, expected ({subsets},)")
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    gen_real = torch.Generator().manual_seed(seed)
    gen_fake = torch.Generator().manual_seed(seed + _FAKE_SEED_OFFSET)
    values = []
    for subset in range(subsets):
        ix = torch.randperm(x.shape[0], generator=gen_real)[:m].to(x.device)
        iy = torch.randperm(y.shape[0], generator=gen_fake)[:m].to(x.device)
        within = real_terms[subset].to(x.device) if real_terms is not None else None
        values.append(_polynomial_mmd2(x[ix], y[iy], degree, gamma, coef, within))
    v = torch.stack(values)
    return float(v.mean()), float(v.std(unbiased=False))


def class_histogram(probs_or_logits: ArrayLike, num_classes: int | None = None) -> Tensor:
    """Counts of the predicted (argmax) class, length ``num_classes``: mode coverage of a generator.

    E.g. on MNIST, ``(hist > 0).sum()`` is the number of digits produced at all and ``hist / hist.sum()``
    against the uniform 0.1 shows collapse onto a few modes.
    """
    x = torch.as_tensor(probs_or_logits).detach()
    if x.dim() != 2:
        raise MetricsError(f"class_histogram expects (N, K) scores, got shape {tuple(x.shape)}")
    k = x.shape[1] if num_classes is None else num_classes
    return torch.bincount(x.argmax(dim=1).cpu(), minlength=k)
