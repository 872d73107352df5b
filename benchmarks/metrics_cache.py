"""Cached real statistics: first evaluation (real statistics computed) vs second (cache hit), on MNIST.

    python benchmarks/metrics_cache.py [--mnist-root ../shared/data] [--n 10000] [--metrics fid,is,kid fid,is]

Real set: the 10,000 MNIST test digits (read from their IDX files inside the timed real-statistics step, as
a datamodule would on a cache miss). Fake set: the same digits with Gaussian pixel noise, shuffled. Extractor:
the shipped MNIST classifier. Both evaluations run in one process into a fresh temporary cache directory;
the extractor is warmed up first so neither timing pays one-off kernel initialisation. The ratio depends on
the metric set: the cache removes the real-side work only, and KID's 100 float64 subset MMDs cost the same
in both evaluations, so each metric set gets its own pair of evaluations.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from gan_lightning.metrics import MNISTClassifier, StatsKey, compute_metrics, extract, real_statistics
from gan_lightning.metrics.mnist import load_mnist_test


def evaluate(args, metrics: str, extractor, fake, cache_dir: Path) -> tuple[float, float, dict, bool]:
    """One evaluation as the callback does it: real statistics (cached or not), then the fake scores."""
    start = time.perf_counter()
    key = StatsKey("mnist", "test", 28, extractor.name, args.n)
    real = real_statistics(key, lambda: extract(extractor, load_mnist_test(args.mnist_root)[0][: args.n],
                                                args.batch_size).features, cache_dir=cache_dir)
    real_s = time.perf_counter() - start
    scores = compute_metrics(fake, real, extractor, metrics, batch_size=args.batch_size)
    return real_s, time.perf_counter() - start, scores, real.from_cache


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mnist-root", type=Path, default=Path("../shared/data"))
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--metrics", nargs="+", default=["fid,is,kid", "fid,is"], help="metric sets to time")
    p.add_argument("--batch-size", type=int, default=500)
    args = p.parse_args()

    torch.manual_seed(0)
    digits = load_mnist_test(args.mnist_root)[0][: args.n]
    fake = (digits + 0.3 * torch.randn_like(digits)).clamp(-1, 1)[torch.randperm(len(digits))]
    extractor = MNISTClassifier()
    extractor(fake[:64])  # warm-up
    print(f"torch threads: {torch.get_num_threads()}, n = {args.n} real and {args.n} fake")

    for metrics in args.metrics:
        with tempfile.TemporaryDirectory() as tmp:
            real1, total1, scores1, hit1 = evaluate(args, metrics, extractor, fake, Path(tmp))
            real2, total2, scores2, hit2 = evaluate(args, metrics, extractor, fake, Path(tmp))
        assert not hit1 and hit2 and scores1 == scores2, "second evaluation must hit the cache with equal scores"
        print(f"[{metrics}] first evaluation (real statistics computed): {total1:7.3f} s "
              f"(real statistics {real1:.3f} s)")
        print(f"[{metrics}] second evaluation (real statistics cached):  {total2:7.3f} s (cache load {real2:.3f} s)")
        print(f"[{metrics}] ratio second / first: {total2 / total1:.3f} (target <= 0.5)")
        print(f"[{metrics}] scores:", {k: round(v, 5) for k, v in scores1.items()})

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        mnist_real = real_statistics(StatsKey("mnist", "test", 28, extractor.name, args.n),
                                     lambda: extract(extractor, digits, args.batch_size).features, cache_dir=tmp)
        fid_real = time.perf_counter() - start
        start = time.perf_counter()
        fid = compute_metrics(fake, mnist_real, extractor, "fid", batch_size=args.batch_size)["fid"]
        fid_fake = time.perf_counter() - start
    print(f"MNIST-FID on {args.n} samples (CPU): {fid_fake:.3f} s with cached real statistics, "
          f"{fid_real + fid_fake:.3f} s including the real side; FID noisy-vs-clean = {fid:.3f}")


if __name__ == "__main__":
    main()
