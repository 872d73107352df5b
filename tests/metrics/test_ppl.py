"""Perceptual path length against hand computation on a linear "generator" (where the path length is known in closed
form), its noise handling and refusals on tiny StyleGAN2/DCGAN, ``evaluate --metrics ppl``, and the perceptual
distances it is measured with."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_lightning.cli import main
from gan_lightning.errors import GanLightningError
from gan_lightning.metrics.perceptual import MNIST_TAPS, mnist_distance, vgg16_distance
from gan_lightning.metrics.ppl import path_lengths, perceptual_path_length, ppl_score
from gan_lightning.models import DCGAN, StyleGAN2
from gan_lightning.nets import stylegan2 as nets
from tests.conftest import tiny_overrides

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from check_lpips import seeded_lpips_state, seeded_vgg16_state  # noqa: E402


def squared_l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).square().flatten(1).sum(1)


def linear_setup(dim: int = 4, pixels: int = 6):
    """G(w) = A w as a 1 x 1 x pixels "image", mapping = identity, float64."""
    torch.manual_seed(0)
    a = torch.randn(pixels, dim, dtype=torch.float64)

    def synthesis(w: torch.Tensor) -> torch.Tensor:
        return (w @ a.T).reshape(-1, 1, 1, pixels)

    return a, (lambda z, labels: z), synthesis


def test_path_lengths_of_a_linear_generator_match_hand_computation() -> None:
    a, mapping, synthesis = linear_setup()
    n = 200
    generator = torch.Generator().manual_seed(3)
    lengths = path_lengths(mapping, synthesis, lambda m: (torch.randn(m, 4, generator=generator,
                                                                       dtype=torch.float64), None),
                           squared_l2, n, batch_size=n)
    # By hand: the same draws; G linear, so ||G(w0 + eps (w1 - w0)) - G(w0)||^2 / eps^2 = ||A (w1 - w0)||^2.
    z = torch.randn(2 * n, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expected = ((z[n:] - z[:n]) @ a.T).square().sum(1)
    torch.testing.assert_close(lengths, expected, rtol=1e-6, atol=0)
    # The score: the mean between the 1st (lower) and 99th (higher) percentile = sorted[1:199] of 200 values.
    ordered = np.sort(expected.numpy())
    assert ppl_score(lengths) == pytest.approx(ordered[1:199].mean(), rel=1e-12)
    # "full" sampling: for a linear G the length does not depend on t.
    generator = torch.Generator().manual_seed(3)
    full = path_lengths(mapping, synthesis, lambda m: (torch.randn(m, 4, generator=generator,
                                                                    dtype=torch.float64), None),
                        squared_l2, n, sampling="full", batch_size=n, generator=generator)
    torch.testing.assert_close(full, expected, rtol=1e-6, atol=0)


def test_linear_generator_path_length_expectation_is_twice_the_trace() -> None:
    a, mapping, synthesis = linear_setup()
    generator = torch.Generator().manual_seed(0)
    lengths = path_lengths(mapping, synthesis, lambda m: (torch.randn(m, 4, generator=generator,
                                                                       dtype=torch.float64), None),
                           squared_l2, 20000, batch_size=5000)
    # w1 - w0 ~ N(0, 2 I): E ||A (w1 - w0)||^2 = 2 tr(A^T A); the mean of 20,000 draws is within 3% (chi-square
    # like, relative std about 2 / sqrt(20000 * effective dof) < 1%).
    assert lengths.mean().item() == pytest.approx(2 * torch.trace(a.T @ a).item(), rel=0.03)


def tiny_stylegan2(noise_strength: float) -> StyleGAN2:
    torch.manual_seed(0)
    model = StyleGAN2({"latent_dim": 8, "w_dim": 8, "channel_base": 64, "channel_max": 8, "mapping_layers": 1},
                      (1, 16, 16)).eval()
    with torch.no_grad():
        for layer in model.sampling_generator.modules():
            if isinstance(layer, nets.ModulatedConv):
                layer.noise_strength.fill_(noise_strength)
    return model


def test_both_ends_of_a_path_share_their_noise_and_models_without_w_refuse() -> None:
    # With strong noise, ends rendered with different noise would differ by O(1), i.e. lengths O(1 / eps^2) = 1e8.
    quiet = perceptual_path_length(tiny_stylegan2(0.0), mnist_distance(), 100, batch_size=50)
    noisy = perceptual_path_length(tiny_stylegan2(1.0), mnist_distance(), 100, batch_size=50)
    assert 0 < quiet["ppl"] < 1e5 and 0 < noisy["ppl"] < 1e5, (quiet, noisy)
    assert noisy["ppl_distance"] == "mnist-lpips" and noisy["ppl_n"] == 100 and noisy["ppl_epsilon"] == 1e-4
    again = perceptual_path_length(tiny_stylegan2(1.0), mnist_distance(), 100, batch_size=50)
    assert again["ppl"] == noisy["ppl"]  # seeded
    torch.manual_seed(0)
    dcgan = DCGAN({"latent_dim": 8, "width_g": 8, "width_d": 8}, (1, 28, 28))
    with pytest.raises(GanLightningError, match="dcgan has no mapping network"):
        perceptual_path_length(dcgan, mnist_distance(), 100)


def test_mnist_distance_is_the_unit_normalised_tap_difference() -> None:
    torch.manual_seed(0)
    x, y = torch.rand(3, 1, 28, 28) * 2 - 1, torch.rand(3, 1, 28, 28) * 2 - 1
    distance = mnist_distance()
    torch.testing.assert_close(distance(x, x), torch.zeros(3))
    expected, hidden = torch.zeros(3), [x, y]
    for index, layer in enumerate(distance.layers):
        hidden = [layer(h) for h in hidden]
        if index in MNIST_TAPS:
            a, b = (h / h.norm(dim=1, keepdim=True) for h in hidden)
            diff = (a - b).square().sum(1)
            expected += diff.flatten(1).mean(1) if diff.dim() > 1 else diff
    torch.testing.assert_close(distance(x, y), expected, rtol=1e-4, atol=1e-6)
    x.requires_grad_(True)
    distance(x, y).sum().backward()  # differentiable in the images, the net stays frozen
    assert x.grad.abs().sum() > 0 and all(p.grad is None for p in distance.parameters())


def test_vgg16_distance_reads_torchvision_features_and_refuses_other_files(tmp_path: Path) -> None:
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    features = make_layers(cfgs["D"])  # vgg16().features: the same keys and shapes
    path = tmp_path / "vgg16.pth"
    torch.save({f"features.{key}": value for key, value in features.state_dict().items()}, path)
    distance = vgg16_distance(path)
    x, y = torch.rand(2, 1, 16, 16) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    torch.testing.assert_close(distance(x, x), torch.zeros(2))
    assert (distance(x, y) > 0).all() and len(distance.features(x)) == 5
    torch.save({"something": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(GanLightningError, match=r"other.pth lacks features\.0\.weight \(expected torchvision's vgg16"):
        vgg16_distance(tmp_path / "other.pth")
    with pytest.raises(GanLightningError, match="missing.pth does not exist"):
        vgg16_distance(tmp_path / "missing.pth")


def test_evaluate_ppl_from_the_cli(fake_mnist: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "sg2"
    tiny_widths = ["model.latent_dim=8", "model.w_dim=8", "model.channel_base=64", "model.channel_max=8",
                   "model.mapping_layers=1"]
    # ppl is a registered metric: the training callback logs it as val/ppl through the same path as evaluate
    assert main(["train", "stylegan2_digits", "trainer.max_steps=1", f"run.dir={run}", "run.quiet=true",
                 "callbacks.samples.every_n_steps=1000", "callbacks.samples.n=16", "data.batch_size=8",
                 "data.limit=64", "callbacks.metrics.enabled=true", "callbacks.metrics.metrics=ppl",
                 "callbacks.metrics.n_samples=100", "callbacks.metrics.batch_size=50", *tiny_widths]) == 0
    during = json.loads((run / "metrics" / "step_0000001.json").read_text())
    assert "val/ppl" in (run / "metrics.csv").read_text().splitlines()[0]  # a logged scalar, as val/fid is
    capsys.readouterr()
    assert main(["evaluate", str(run / "checkpoints" / "last.ckpt"), "--metrics", "ppl", "--n", "100"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["ppl"] > 0 and scores["ppl_n"] == 100 and "fid" not in scores and "extractor" not in scores
    assert scores["ppl"] == during["ppl"]  # same samples, same noise, same distance
    # ... and equals the library function on the checkpoint's model with the same settings
    from gan_lightning.loading import load_model
    direct = perceptual_path_length(load_model(run / "checkpoints" / "last.ckpt"), mnist_distance(), 100,
                                    batch_size=50, seed=0)
    assert direct["ppl"] == scores["ppl"]
    # learned LPIPS (as stylegan2-ada's PPL) when both VGG16 files are given: the same path, the learned distance
    vgg, lin = tmp_path / "vgg16.pth", tmp_path / "lpips_vgg.pth"
    torch.save(seeded_vgg16_state(), vgg)
    torch.save(seeded_lpips_state(), lin)
    assert main(["evaluate", str(run / "checkpoints" / "last.ckpt"), "--metrics", "ppl", "--n", "100",
                 "--vgg-weights", str(vgg), "--lpips-weights", str(lin)]) == 0
    learned = json.loads(capsys.readouterr().out)
    assert learned["ppl_distance"] == "vgg16-lpips-learned"
    direct = perceptual_path_length(load_model(run / "checkpoints" / "last.ckpt"), vgg16_distance(vgg, lin), 100,
                                    batch_size=50, seed=0)
    assert direct["ppl"] == learned["ppl"] != scores["ppl"]
    assert main(["evaluate", str(run / "checkpoints" / "last.ckpt"), "--metrics", "ppl", "--n", "100",
                 "--lpips-weights", str(lin)]) == 1
    assert "LPIPS's learned weights sit on VGG16; give --vgg-weights" in capsys.readouterr().err
    assert main(["compare", str(run), "--out", str(tmp_path / "compared"), "--rank-by", "ppl"]) == 0
    rows = list(csv.DictReader((tmp_path / "compared" / "compare.csv").open()))
    assert rows[0]["final ppl"] == f"{during['ppl']:.3f}"
    assert main(["evaluate", str(run / "checkpoints" / "last.ckpt"), "--metrics", "ppl", "--n", "10"]) == 1
    assert "--n must be >= 100 (ppl drops the path lengths below the 1st and above the 99th percentile)" in \
        capsys.readouterr().err
    # a model ppl cannot measure is refused before training, as by evaluate
    assert main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, tmp_path / "refused", 1),
                 "callbacks.metrics.enabled=true", "callbacks.metrics.metrics=fid,ppl"]) != 0
    assert "ppl is measured in W: model dcgan" in capsys.readouterr().err
    assert not (tmp_path / "refused" / "checkpoints").exists()
    main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, tmp_path / "dcgan", 1)])
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "dcgan" / "checkpoints" / "last.ckpt"), "--metrics", "fid,ppl"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ppl is measured in W: model dcgan") and err.count("\n") == 1
