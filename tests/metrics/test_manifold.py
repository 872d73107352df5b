"""Precision/recall and density/coverage: hand-made point sets, the reference ``prdc`` package, the radii cache."""

import contextlib
import io
import math

import pytest
import torch

from gan_lightning.metrics import MetricsError, StatsKey, compute_metrics, extract, manifold, real_statistics
from gan_lightning.metrics.manifold import density_coverage, knn_radii, precision_recall
from gan_lightning.metrics.stats import knn_radii_key, real_knn_radii


def _grid(n: int = 5) -> torch.Tensor:
    """The n x n integer grid in the plane: every distance and radius is known by hand."""
    return torch.cartesian_prod(torch.arange(n), torch.arange(n)).double()


def test_radii_on_a_grid_are_the_hand_computed_kth_neighbour_distances() -> None:
    radii = knn_radii(_grid(), 3).view(5, 5)
    # Corners: two neighbours at 1, the third at sqrt 2; every other point has >= 3 neighbours at distance 1.
    expected = torch.ones(5, 5, dtype=torch.float64)
    expected[0, 0] = expected[0, 4] = expected[4, 0] = expected[4, 4] = math.sqrt(2)
    torch.testing.assert_close(radii, expected)
    # k = 5 on an interior point: 4 neighbours at 1, the 5th at sqrt 2.
    assert float(knn_radii(_grid(), 5).view(5, 5)[2, 2]) == pytest.approx(math.sqrt(2))


def test_fakes_between_grid_points_are_all_precise_and_a_far_cloud_scores_zero() -> None:
    real = _grid()
    between = real[real[:, 1] < 4] + torch.tensor([0.0, 0.5], dtype=torch.float64)  # 20 midpoints of vertical edges
    # Each midpoint is 0.5 from two reals whose radius is >= 1: inside the real manifold.
    assert precision_recall(real, between, k=3)["precision"] == 1.0
    # Recall: the midpoints' own radius (k = 3) is 1, so exactly the reals at distance 0.5 are inside: all 25.
    assert precision_recall(real, between, k=3)["recall"] == 1.0
    far = real + 100.0
    assert precision_recall(real, far, k=3) == {"precision": 0.0, "recall": 0.0}
    assert density_coverage(real, far, k=3) == {"density": 0.0, "coverage": 0.0}


def _by_definition(real: torch.Tensor, fake: torch.Tensor, k: int) -> dict[str, float]:
    """The four formulas written out sample by sample, from all pairwise distances (slow, for tiny sets)."""
    def radius(points: torch.Tensor, i: int) -> float:
        others = sorted(float((points[i] - points[j]).norm()) for j in range(len(points)) if j != i)
        return others[k - 1]

    r_real = [radius(real, i) for i in range(len(real))]
    r_fake = [radius(fake, j) for j in range(len(fake))]
    dist = [[float((fake[j] - real[i]).norm()) for i in range(len(real))] for j in range(len(fake))]
    reals, fakes = range(len(real)), range(len(fake))
    in_balls = [sum(dist[j][i] < r_real[i] for i in reals) for j in fakes]
    return {"precision": sum(c > 0 for c in in_balls) / len(fake),
            "recall": sum(any(dist[j][i] < r_fake[j] for j in fakes) for i in reals) / len(real),
            "density": sum(in_balls) / (k * len(fake)),
            "coverage": sum(min(dist[j][i] for j in fakes) < r_real[i] for i in reals) / len(real)}


@pytest.mark.parametrize("k", [1, 3, 5])
def test_grid_scores_equal_the_definitions(k: int) -> None:
    real = _grid()
    fake = torch.cat([real[::3] + torch.tensor([0.5, 0.25], dtype=torch.float64), _grid(3) * 2.5 + 0.3])
    ours = {**precision_recall(real, fake, k), **density_coverage(real, fake, k)}
    assert ours == pytest.approx(_by_definition(real, fake, k), abs=1e-12)


def test_a_collapsed_generator_has_precision_one_and_no_recall() -> None:
    real = _grid()
    collapsed = real[12].repeat(30, 1)  # every sample is the centre digit, say the number 7
    pr, dc = precision_recall(real, collapsed, k=3), density_coverage(real, collapsed, k=3)
    assert pr == {"precision": 1.0, "recall": 0.0}  # the fake balls have radius 0: no real inside them
    # Only the centre's own ball holds the fakes (its neighbours are at exactly its radius 1: open ball).
    assert dc == {"density": pytest.approx(1 / 3), "coverage": pytest.approx(1 / 25)}
    # Nearly collapsed (a tiny jittered cluster): recall at most the one real inside the cluster's balls.
    jitter = collapsed + 1e-3 * torch.randn(30, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    pr = precision_recall(real, jitter, k=3)
    assert pr["precision"] == 1.0 and pr["recall"] <= 1 / 25


def test_a_perfect_copy_scores_one_everywhere() -> None:
    real = torch.randn(400, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert precision_recall(real, real.clone(), k=3) == {"precision": 1.0, "recall": 1.0}
    dc = density_coverage(real, real.clone(), k=5)
    # Each real ball holds its centre and its 4 nearer neighbours: 5 = k, so density 1 (up to round-off on the
    # boundary neighbour, whose distance is the radius itself).
    assert dc["coverage"] == 1.0 and dc["density"] == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("k", [3, 5])
def test_equals_the_prdc_reference_on_random_features(k: int) -> None:
    prdc = pytest.importorskip("prdc")
    g = torch.Generator().manual_seed(k)
    real = torch.randn(300, 32, generator=g, dtype=torch.float64)
    fake = 1.3 * torch.randn(250, 32, generator=g, dtype=torch.float64) + 0.2
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        reference = prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=k)
    ours = {**precision_recall(real, fake, k), **density_coverage(real, fake, k)}
    assert 0 < ours["precision"] < 1 and 0 < ours["coverage"] < 1  # a case that tells the formulas apart
    assert ours == pytest.approx({key: float(v) for key, v in reference.items()}, abs=1e-6)


def test_chunked_distances_give_the_unchunked_result(monkeypatch) -> None:
    g = torch.Generator().manual_seed(2)
    real, fake = torch.randn(90, 6, generator=g), torch.randn(70, 6, generator=g) + 0.3
    whole = {**precision_recall(real, fake), **density_coverage(real, fake)}
    monkeypatch.setattr(manifold, "CHUNK", 16)
    assert {**precision_recall(real, fake), **density_coverage(real, fake)} == whole


def test_bad_inputs_are_metric_errors() -> None:
    with pytest.raises(MetricsError, match="1 <= k < number of samples"):
        precision_recall(torch.zeros(3, 2), torch.zeros(5, 2), k=3)
    with pytest.raises(MetricsError, match="feature dims differ"):
        density_coverage(torch.zeros(9, 2), torch.zeros(9, 3))
    with pytest.raises(MetricsError, match="4 real radii for 9"):
        density_coverage(torch.randn(9, 2), torch.randn(9, 2), real_radii=torch.ones(4))


def test_real_radii_are_cached_per_k_with_the_statistics(tiny, tmp_path) -> None:
    prdc = pytest.importorskip("prdc")
    g = torch.Generator().manual_seed(3)
    real_images = torch.rand(120, 3, 8, 8, generator=g) * 2 - 1
    fake_images = (torch.rand(80, 3, 8, 8, generator=g) * 1.6 - 0.6).clamp(-1, 1)
    key = StatsKey("fake", "train", 8, tiny.name, num_samples=120)
    first = real_statistics(key, lambda: extract(tiny, real_images).features, cache_dir=tmp_path)
    scores = compute_metrics(fake_images, first, tiny, metrics="precision,recall,density,coverage")
    assert set(first.knn_radii) == {knn_radii_key(3), knn_radii_key(5)}  # one entry per k: k is in the key
    again = real_statistics(key, lambda: pytest.fail("recomputed"), cache_dir=tmp_path)
    assert again.from_cache and set(again.knn_radii) == {knn_radii_key(3), knn_radii_key(5)}
    torch.testing.assert_close(again.knn_radii[knn_radii_key(3)], knn_radii(first.features, 3))
    torch.testing.assert_close(real_knn_radii(again, 5), knn_radii(first.features, 5))
    # The scores: prdc on the same (real sample, fake) features, k = 3 for P/R and 5 for D/C.
    fake = extract(tiny, fake_images).features.double().numpy()
    with contextlib.redirect_stdout(io.StringIO()):
        pr = prdc.compute_prdc(first.features.double().numpy(), fake, nearest_k=3)
        dc = prdc.compute_prdc(first.features.double().numpy(), fake, nearest_k=5)
    expected = {"precision": pr["precision"], "recall": pr["recall"], "density": dc["density"],
                "coverage": dc["coverage"]}
    assert scores == pytest.approx({k: float(v) for k, v in expected.items()}, abs=1e-6)
    # Asking for recall alone reports recall alone (precision is computed with it but not reported).
    assert set(compute_metrics(fake_images, again, tiny, metrics="recall")) == {"recall"}
