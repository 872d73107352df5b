"""Projection (``gan-lightning project``) and the sampling CLI's editing options on tiny checkpoints: the projector's
schedule and noise penalty against hand computation, recovery of a latent from an image the same G made (W, W+ and
a plain G's Z), the files written, and one-line errors."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_lightning.cli import main
from gan_lightning.models import DCGAN, StyleGAN2
from gan_lightning.nets import stylegan2 as nets
from gan_lightning.projection import (
    ProjectionSettings,
    latent_noise_scale,
    learning_rate,
    noise_regularization,
    project,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from check_lpips import seeded_lpips_state, seeded_vgg16_state  # noqa: E402

TINY_SG2 = {"latent_dim": 8, "w_dim": 8, "channel_base": 64, "channel_max": 8, "mapping_layers": 1}
FAST = {"average_samples": 1000}

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def stylegan2(size: int = 16) -> StyleGAN2:
    torch.manual_seed(0)
    model = StyleGAN2(TINY_SG2, (1, size, size)).eval()
    g = model.sampling_generator
    with torch.no_grad():
        g.w_avg.copy_(g.mapping(torch.randn(4000, 8)).mean(0))  # as training would have tracked it
        for layer in g.modules():
            if isinstance(layer, nets.ModulatedConv):
                layer.noise_strength.fill_(0.02)  # a trained G uses its noise a little
    return model


def dcgan() -> DCGAN:
    torch.manual_seed(0)
    return DCGAN({"latent_dim": 8, "width_g": 8, "width_d": 8}, (1, 28, 28)).eval()


def save_checkpoint(model, path: Path) -> str:
    torch.save({"hyper_parameters": dict(model.hparams), "state_dict": model.state_dict()}, path)
    return str(path)


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).square().flatten(1).mean(1)


def test_learning_rate_ramp_and_latent_noise_follow_the_reference_schedule() -> None:
    s = ProjectionSettings(steps=100)
    assert learning_rate(0, s) == 0.0
    assert learning_rate(2, s) == pytest.approx(0.1 * 0.02 / 0.05)  # ramping up over the first 5%
    assert learning_rate(50, s) == pytest.approx(0.1)
    assert learning_rate(90, s) == pytest.approx(0.1 * (0.5 - 0.5 * math.cos(0.4 * math.pi)))  # cosine down
    assert latent_noise_scale(0, 2.0, s) == pytest.approx(2.0 * 0.05)
    assert latent_noise_scale(30, 2.0, s) == pytest.approx(2.0 * 0.05 * (1 - 0.3 / 0.75) ** 2)
    assert latent_noise_scale(80, 2.0, s) == 0.0


def test_noise_regularization_is_the_multiscale_squared_autocorrelation() -> None:
    torch.manual_seed(0)
    maps = [torch.randn(2, 1, 16, 16), torch.randn(2, 1, 4, 4)]
    expected = torch.zeros(2)
    for i in range(2):
        for noise in maps:
            x = noise[i, 0]
            while True:  # 16 px: 16 and 8; 4 px: itself only
                right = sum(x[r, c] * x[r, c - 1] for r in range(x.shape[0]) for c in range(x.shape[1]))
                down = sum(x[r, c] * x[r - 1, c] for r in range(x.shape[0]) for c in range(x.shape[1]))
                expected[i] += (right / x.numel()) ** 2 + (down / x.numel()) ** 2
                if x.shape[0] <= 8:
                    break
                x = x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2).mean((1, 3))
    torch.testing.assert_close(noise_regularization(maps), expected)


@pytest.mark.parametrize("w_plus", [False, True])
def test_projection_recovers_an_image_stylegan2_made(w_plus: bool) -> None:
    model = stylegan2()
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(1))
    targets = model.generate(z, noise="const")
    result = project(model.projection_space(w_plus), targets, None, ProjectionSettings(steps=150, **FAST))
    random_error = mse(model.generate(torch.randn(3, 8), noise="const"), targets)
    error = mse(result.images, targets)
    # Measured: random latents 0.3-2.0, projections below 1e-4 (W) / 1e-3 (W+).
    assert (random_error > 0.1).all() and (error < 0.01 * random_error).all(), (error, random_error)
    assert result.latents.shape == ((3, 6, 8) if w_plus else (3, 1, 8)) and result.layer_latents.shape == (3, 6, 8)
    # The maps stay normalised (zero mean, unit variance each), one set per image.
    for noise in result.noise_maps:
        assert noise.shape[0] == 3
        torch.testing.assert_close(noise.mean((1, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
        torch.testing.assert_close(noise.square().mean((1, 2, 3)), torch.ones(3), atol=1e-4, rtol=0)
    assert len(result.snapshots) == 8 and torch.equal(result.snapshots[-1], result.images)
    if not w_plus:  # one w reproduces the image: it is (close to) the w that made it
        w_true = model.sampling_generator.mapping(z)
        start = (model.sampling_generator.w_avg - w_true).norm(dim=1)
        assert ((result.latents[:, 0] - w_true).norm(dim=1) < 0.2 * start).all()


def test_projection_into_z_of_a_plain_generator() -> None:
    model = dcgan()
    targets = model.generate(torch.randn(2, 8, generator=torch.Generator().manual_seed(1)))
    result = project(model.projection_space(), targets, None, ProjectionSettings(steps=150, **FAST))
    random_error = mse(model.generate(torch.randn(2, 8)), targets)
    assert result.latents.shape == (2, 8) and result.noise_maps == []
    assert (mse(result.images, targets) < 0.05 * random_error).all(), (mse(result.images, targets), random_error)


def write_digits(folder: Path, images: torch.Tensor, size: int | None = None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        array = image[0].add(1).mul(127.5).round().clamp(0, 255).byte().numpy()
        picture = Image.fromarray(array, mode="L")
        if size is not None:
            picture = picture.resize((size, size), Image.BICUBIC)
        paths.append(folder / f"digit{i}.png")
        picture.save(paths[-1])
    return paths


def test_project_cli_writes_latents_images_and_progress(tmp_path: Path, capsys) -> None:
    model = stylegan2()
    ckpt = save_checkpoint(model, tmp_path / "g.ckpt")
    targets = model.generate(torch.randn(2, 8, generator=torch.Generator().manual_seed(1)), noise="const").clamp(-1, 1)
    write_digits(tmp_path / "in", targets, size=24)  # another size: resized to the model's 16 px
    out = tmp_path / "out"
    assert main(["project", ckpt, "--input", str(tmp_path / "in"), "--out", str(out), "--steps", "60"]) == 0
    saved = torch.load(out / "latents.pt", weights_only=True)
    assert saved["space"] == "w" and saved["names"] == ["digit0.png", "digit1.png"]
    assert saved["latents"].shape == (2, 1, 8) and saved["layer_latents"].shape == (2, 6, 8)
    assert saved["perceptual"] == "mnist-lpips" and saved["distances"].shape == (2,)
    # The saved ws and noise maps reproduce the written image (up to its 8-bit quantisation).
    space = model.projection_space()
    for layer, noise in zip(space.noise_layers, saved["noise_maps"], strict=True):
        layer.noise_const = noise
    with torch.no_grad():
        again = space.render(saved["latents"])
    with Image.open(out / "digit1_projected.png") as image:
        written = torch.from_numpy(np.asarray(image.convert("L"), dtype=np.float32).copy())
    assert (written / 255 - again[1, 0].add(1).div(2).clamp(0, 1)).abs().max() < 1 / 255 + 1e-6
    with Image.open(out / "progress.png") as progress:  # 2 rows of target + 8 snapshots, 16 px + 1 px padding
        assert progress.size == (9 * 17 + 1, 2 * 17 + 1)
    assert "projected 2 images into w" in capsys.readouterr().out
    assert main(["project", ckpt, "--input", str(tmp_path / "in"), "--out", str(out), "--steps", "2",
                 "--pixel-only", "--w-plus"]) == 0
    saved = torch.load(out / "latents.pt", weights_only=True)
    assert saved["perceptual"] == "pixel" and saved["space"] == "w+" and saved["latents"].shape == (2, 6, 8)
    vgg, lin = tmp_path / "vgg16.pth", tmp_path / "lpips_vgg.pth"
    torch.save(seeded_vgg16_state(), vgg)
    torch.save(seeded_lpips_state(), lin)
    assert main(["project", ckpt, "--input", str(tmp_path / "in"), "--out", str(out), "--steps", "2",
                 "--vgg-weights", str(vgg), "--lpips-weights", str(lin)]) == 0
    assert torch.load(out / "latents.pt", weights_only=True)["perceptual"] == "vgg16-lpips-learned"


def test_project_cli_one_line_errors(tmp_path: Path, capsys) -> None:
    ckpt = save_checkpoint(stylegan2(), tmp_path / "g.ckpt")
    dcgan_ckpt = save_checkpoint(dcgan(), tmp_path / "d.ckpt")
    images = write_digits(tmp_path / "in", torch.zeros(1, 1, 16, 16))
    (tmp_path / "notes.txt").write_text("x")
    cases = [
        (["--input", str(tmp_path / "missing"), "--out", str(tmp_path / "o")], "does not exist"),
        (["--input", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "o")], "not an image"),
        (["--input", str(tmp_path / "in"), "--out", str(tmp_path / "in" / "sub")], "inside the --input folder"),
        (["--input", str(images[0]), "--out", str(tmp_path / "o"), "--steps", "0"], "--steps must be >= 1"),
        (["--input", str(images[0]), "--out", str(tmp_path / "o"), "--vgg-weights", str(tmp_path / "notes.txt")],
         "--vgg-weights: " + str(tmp_path / "notes.txt") + " cannot be read as a weights file"),
        (["--input", str(images[0]), "--out", str(tmp_path / "o"), "--pixel-only", "--vgg-weights", "x.pth"],
         "--pixel-only and --vgg-weights: give one of them"),
        (["--input", str(images[0]), "--out", str(tmp_path / "o"), "--lpips-weights", "x.pth"],
         "--lpips-weights x.pth: LPIPS's learned weights sit on VGG16; give --vgg-weights"),
    ]
    for options, message in cases:
        assert main(["project", ckpt, *options]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert main(["project", dcgan_ckpt, "--input", str(images[0]), "--out", str(tmp_path / "o"), "--w-plus"]) == 1
    assert "W+ is a mapping network's space" in capsys.readouterr().err
    # An output that would replace an input is refused before any work: the input is named like the progress grid.
    single = images[0].rename(tmp_path / "progress.png")
    before = single.read_bytes()
    assert main(["project", ckpt, "--input", str(single), "--out", str(tmp_path), "--steps", "2"]) == 1
    assert "which this command reads" in capsys.readouterr().err and single.read_bytes() == before
    assert not (tmp_path / "latents.pt").exists()


def test_sample_cli_editing_options(tmp_path: Path, capsys) -> None:
    model = stylegan2(size=32)
    ckpt = save_checkpoint(model, tmp_path / "g.ckpt")
    out = tmp_path / "mix.pt"
    assert main(["sample", ckpt, "--style-mix", "2", "3", "--mix-layers", "middle", "--out", str(out)]) == 0
    assert "ws 4-5 from the row sources" in capsys.readouterr().out
    generator = torch.Generator().manual_seed(0)
    rows, cols = model.sample_latent(2, generator), model.sample_latent(3, generator)
    torch.testing.assert_close(torch.load(out, weights_only=True), model.style_mix(rows, cols, "middle"))
    out = tmp_path / "t.pt"
    assert main(["sample", ckpt, "--n", "4", "--truncation", "0", "--noise", "const", "--out", str(out)]) == 0
    truncated = torch.load(out, weights_only=True)
    torch.testing.assert_close(truncated, truncated[:1].expand_as(truncated))  # every z: the w_avg image
    assert main(["sample", ckpt, "--n", "8", "--nrow", "4", "--interpolate", "--out", str(tmp_path / "i.png")]) == 0
    capsys.readouterr()
    dcgan_ckpt = save_checkpoint(dcgan(), tmp_path / "d.ckpt")
    cases = [
        (dcgan_ckpt, ["--truncation", "0.7"], "dcgan tracks no average latent"),
        (dcgan_ckpt, ["--noise", "const"], "no noise inputs"),
        (dcgan_ckpt, ["--style-mix", "2", "2"], "no per-layer styles"),
        (ckpt, ["--truncation-cutoff", "2"], "--truncation-cutoff needs --truncation"),
        (ckpt, ["--truncation", "0.5", "--truncation-cutoff", "9"], "cutoff must be in [1, 8]"),
        (ckpt, ["--style-mix", "2", "2", "--mix-layers", "hair"], "expected coarse, middle, fine"),
        (ckpt, ["--style-mix", "0", "2"], "both must be >= 1"),
    ]
    for path, options, message in cases:
        assert main(["sample", path, *options, "--out", str(tmp_path / "x.png")]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "x.png").exists()


def test_sample_with_random_noise_repeats_for_a_seed(tmp_path: Path) -> None:
    ckpt = save_checkpoint(stylegan2(), tmp_path / "g.ckpt")

    def sample(*options: str) -> torch.Tensor:
        out = tmp_path / "s.pt"
        out.unlink(missing_ok=True)
        assert main(["sample", ckpt, "--noise", "random", *options, "--out", str(out)]) == 0
        return torch.load(out, weights_only=True)

    first = sample("--n", "6", "--seed", "3")
    torch.manual_seed(99)  # what the process's RNG held before does not matter: --seed draws the noise maps too
    torch.testing.assert_close(sample("--n", "6", "--seed", "3"), first, rtol=0, atol=0)
    const = sample("--n", "6", "--seed", "3", "--noise", "const")  # the last --noise wins: same latents, fixed maps
    assert not torch.equal(const, first)  # so the maps drawn do change the images
    mix = sample("--style-mix", "2", "2", "--seed", "5")
    torch.testing.assert_close(sample("--style-mix", "2", "2", "--seed", "5"), mix, rtol=0, atol=0)
