"""gan_lightning.metrics.modes and the toy mixtures it scores (datamodules/toy_data.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from datamodules.toy_data import TOY_MIXTURES, grid_modes, ring_modes, sample_mixture
from gan_lightning.metrics.modes import ModeStats, mode_stats, scatter_plot

RING = ring_modes()
STD = 0.01

# --- the mixtures -----------------------------------------------------------------------------------------


def test_ring_and_grid_centres() -> None:
    assert RING.shape == (8, 2)
    torch.testing.assert_close(RING.norm(dim=1), torch.ones(8))
    torch.testing.assert_close(RING[2], torch.tensor([0.0, 1.0]))  # angle 2*pi*2/8 = pi/2
    grid = grid_modes()
    assert grid.shape == (25, 2)
    assert sorted(set(grid[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert len({tuple(p) for p in grid.tolist()}) == 25
    assert ring_modes(4, radius=2.0).norm(dim=1).tolist() == pytest.approx([2.0] * 4)


def test_registered_mixtures_use_pacgan_values() -> None:
    assert TOY_MIXTURES["ring"][1] == 0.01 and len(TOY_MIXTURES["ring"][0]()) == 8
    assert TOY_MIXTURES["grid"][1] == 0.05 and len(TOY_MIXTURES["grid"][0]()) == 25


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_sampler_statistics(name: str) -> None:
    centres_fn, std = TOY_MIXTURES[name]
    centres, n = centres_fn(), 20_000
    points, idx = sample_mixture(centres, std, n, generator=torch.Generator().manual_seed(0))
    assert points.shape == (n, 2) and idx.shape == (n,) and idx.dtype == torch.long
    counts = torch.bincount(idx, minlength=len(centres)).double()
    expected = n / len(centres)  # multinomial: 5 standard deviations of slack
    assert (counts - expected).abs().max() < 5 * math.sqrt(expected)
    offsets = points - centres[idx]
    assert offsets.std(dim=0).tolist() == pytest.approx([std, std], rel=0.05)
    assert offsets.mean(dim=0).abs().max() < 5 * std / math.sqrt(n)
    # real data scores as real data: ~98.9% of a 2-D Gaussian lies within 3 std, every mode is populated
    stats = mode_stats(points, centres, std)
    assert stats.high_quality_pct == pytest.approx(100 * (1 - math.exp(-4.5)), abs=0.5)
    assert stats.modes_captured == stats.modes_captured_1pct == len(centres)
    assert stats.spread_ratio == pytest.approx(1.0, abs=0.02)  # real samples are exactly as wide as the mixture


def test_sampler_is_reproducible_with_a_generator() -> None:
    a = sample_mixture(RING, STD, 10, generator=torch.Generator().manual_seed(3))
    b = sample_mixture(RING, STD, 10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# --- the metrics ------------------------------------------------------------------------------------------


def test_samples_at_every_centre_capture_everything() -> None:
    assert mode_stats(RING.repeat(10, 1), RING, STD) == ModeStats(100.0, 8, 8, spread_ratio=0.0)


def test_collapsed_samples_capture_one_mode() -> None:
    stats = mode_stats(RING[3].expand(500, 2) + 0.5 * STD, RING, STD)
    # every point sqrt(2) * 0.5 std from the centre; a real point within 3 std lies at an RMS distance of
    # std * sqrt(E[X | X < 9]) with X ~ chi2(2) (exponential, mean 2): 2 - 9 e^-4.5 / (1 - e^-4.5) = 1.8989
    real_rms = STD * math.sqrt(2 - 9 * math.exp(-4.5) / (1 - math.exp(-4.5)))
    assert stats.as_dict() == pytest.approx({"high_quality_pct": 100.0, "modes_captured": 1, "modes_captured_1pct": 1,
                                             "spread_ratio": math.sqrt(2) * 0.5 * STD / real_rms})


def test_real_rms_matches_a_monte_carlo_estimate_in_three_dimensions() -> None:
    from gan_lightning.metrics.modes import real_high_quality_rms

    offsets = torch.randn(400_000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    radii = offsets.norm(dim=1)
    assert real_high_quality_rms(1.0, 3) == pytest.approx(radii[radii <= 3].square().mean().sqrt().item(), rel=2e-3)


def test_off_mode_samples_are_not_high_quality() -> None:
    midpoints = (RING + RING.roll(1, dims=0)) / 2  # ~0.38 from each neighbour = 38 std
    stats = mode_stats(midpoints.repeat(4, 1), RING, STD)
    assert (stats.high_quality_pct, stats.modes_captured, stats.modes_captured_1pct) == (0.0, 0, 0)
    assert math.isnan(stats.spread_ratio)  # no high-quality point: no width to measure


def test_mixed_sample_set_with_known_counts() -> None:
    # N = 200: 150 at mode 0, 1 at mode 1 (< 1% of N), 2 at mode 2 (exactly 1%), 2.9 std from mode 5 (still
    # high quality), 1 at 3.1 std from mode 6 (not), and 45 off-mode points at the origin.
    near_5 = RING[5] + torch.tensor([2.9 * STD, 0.0])
    far_6 = RING[6] + torch.tensor([0.0, 3.1 * STD])
    samples = torch.cat([RING[0].expand(150, 2), RING[1][None], RING[2].expand(2, 2), near_5[None],
                         far_6[None], torch.zeros(45, 2)])
    assert len(samples) == 200
    stats = mode_stats(samples, RING, STD)
    assert stats.high_quality_pct == pytest.approx(100 * 154 / 200)
    assert stats.modes_captured == 4  # modes 0, 1, 2, 5
    assert stats.modes_captured_1pct == 2  # modes 0 and 2: mode 1 (0.5%) and mode 5 (0.5%) fall short
    assert mode_stats(samples, RING, STD, min_fraction=0.005).modes_captured_1pct == 4


def test_mode_stats_input_checks() -> None:
    with pytest.raises(ValueError, match="expected samples"):
        mode_stats(torch.zeros(5, 3), RING, STD)
    empty = mode_stats(torch.zeros(0, 2), RING, STD)
    assert (empty.high_quality_pct, empty.modes_captured, empty.modes_captured_1pct) == (0.0, 0, 0)


def test_scatter_plot_writes_png(tmp_path: Path) -> None:
    points, _ = sample_mixture(RING, STD, 200, generator=torch.Generator().manual_seed(0))
    path = scatter_plot(points, RING, tmp_path / "sub" / "ring.png", title="step 0")
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
