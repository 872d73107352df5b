"""Latent-space tools and the sample CLI options of the zoo: --label, --interpolate, --arithmetic."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from gan_lightning.cli import main
from gan_lightning.latent import interpolate, interpolation_grid, latent_arithmetic, sample_prior, slerp
from tests.test_zoo_experiments import tiny


def test_interpolation_endpoints_and_shapes() -> None:
    a, b = torch.randn(5), torch.randn(5)
    for method in ("slerp", "lerp"):
        path = interpolate(a, b, 4, method)
        assert path.shape == (4, 5)
        torch.testing.assert_close(path[0], a)
        torch.testing.assert_close(path[-1], b)
    torch.testing.assert_close(interpolate(a, b, 3, "lerp")[1], (a + b) / 2)
    # slerp between orthogonal unit vectors stays on the unit circle
    e0, e1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    torch.testing.assert_close(slerp(e0, e1, torch.tensor([0.5]))[0].norm(), torch.tensor(1.0))
    assert interpolation_grid(torch.randn(3, 5), torch.randn(3, 5), 6).shape == (18, 5)
    with pytest.raises(ValueError, match="steps"):
        interpolate(a, b, 1)


def test_sample_prior_normal_and_mixture_statistics() -> None:
    normal = sample_prior(20000, 3, generator=torch.Generator().manual_seed(0))
    assert normal.mean(0).abs().max() < 0.05 and (normal.std(0) - 1).abs().max() < 0.03
    means = torch.tensor([[10.0, 0.0], [-10.0, 0.0]])
    mixture = sample_prior(20000, 2, means, 0.5, generator=torch.Generator().manual_seed(0))
    right = mixture[:, 0] > 0
    assert abs(right.float().mean().item() - 0.5) < 0.02  # components equally likely
    for side, centre in ((right, means[0]), (~right, means[1])):
        torch.testing.assert_close(mixture[side].mean(0), centre, atol=0.03, rtol=0)
        torch.testing.assert_close(mixture[side].std(0), torch.tensor([0.5, 0.5]), atol=0.02, rtol=0)


def test_latent_arithmetic() -> None:
    a, b, c = torch.randn(4), torch.randn(4), torch.randn(4)
    torch.testing.assert_close(latent_arithmetic(a, b, c), a + b - c)
    groups = [torch.randn(3, 4) for _ in range(3)]
    torch.testing.assert_close(latent_arithmetic(*groups), groups[0].mean(0) + groups[1].mean(0) - groups[2].mean(0))


def test_sample_cli_label_interpolate_arithmetic(fake_mnist: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "cgan"
    assert main(["train", "cgan_mnist", *tiny("cgan_mnist", run, fake_mnist)]) == 0
    ckpt = str(run / "checkpoints" / "last.ckpt")
    assert main(["sample", ckpt, "--n", "5", "--label", "7", "--out", str(tmp_path / "sevens.pt")]) == 0
    assert torch.load(tmp_path / "sevens.pt").shape == (5, 1, 28, 28)
    assert main(["sample", ckpt, "--n", "12", "--nrow", "6", "--interpolate", "--out", str(tmp_path / "i.png")]) == 0
    assert Image.open(tmp_path / "i.png").size == (6 * 28 + 7 * 2, 2 * 28 + 3 * 2)
    assert main(["sample", ckpt, "--arithmetic", "1,2,3", "--out", str(tmp_path / "a.pt")]) == 0
    assert torch.load(tmp_path / "a.pt").shape == (4, 1, 28, 28)
    assert main(["sample", ckpt, "--arithmetic", "1,2", "--out", str(tmp_path / "b.pt")]) == 1
    assert "three seeds" in capsys.readouterr().err


def test_sample_cli_on_toy_points(tmp_path: Path) -> None:
    run = tmp_path / "ring"
    assert main(["train", "gan_ring", *tiny("gan_ring", run, tmp_path)]) == 0
    ckpt = str(run / "checkpoints" / "last.ckpt")
    assert main(["sample", ckpt, "--n", "50", "--out", str(tmp_path / "points.pt")]) == 0
    assert torch.load(tmp_path / "points.pt").shape == (50, 2)
    assert main(["sample", ckpt, "--n", "50", "--out", str(tmp_path / "points.png")]) == 0
    assert Image.open(tmp_path / "points.png").size[0] > 100
