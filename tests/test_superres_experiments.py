"""Super-resolution from the CLI: every shipped SR experiment trains a few tiny steps; the srresnet -> srgan chain
through model.init_from; exact resume; grids LR/bicubic/SR/HR; evaluate next to bicubic; upscale (names kept, tiled,
never over an input) and interpolate (same architecture only)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from gan_lightning.cli import main
from gan_lightning.config import EXPERIMENTS_DIR
from tests.conftest import assert_same_state

SUPERRES = sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml")
                  if OmegaConf.load(p).data.name == "superres")
COMMON = ["run.quiet=true", "trainer.accelerator=cpu", "trainer.log_every_n_steps=1", "trainer.max_epochs=null",
          "callbacks.samples.n=6", "callbacks.samples.nrow=3", "callbacks.metrics.enabled=false"]


def write_photos(root: Path, count: int, size: int = 24) -> Path:
    """Smooth random RGB images (a low-resolution noise field enlarged), so that SR has something to learn."""
    generator = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        small = generator.integers(0, 256, (size // 4, size // 4, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.BICUBIC).save(root / f"img{index}.png")
    return root


def tiny_model(raw) -> list[str]:
    """Overrides that make an SR experiment's networks a few channels wide, without a pre-trained G or VGG file."""
    model = ["model.width_g=4", "model.n_blocks=1", "model.growth=4"]
    if raw.model.name != "srresnet":
        model += ["model.width_d=2", "model.dense_d=4", "model.init_from=null"]
        if raw.model.get("perceptual_layer"):
            model += ["model.vgg_weights=null", "model.vgg_random_weights=true"]
    return model


def tiny_data(raw, tmp_path: Path) -> list[str]:
    """Overrides that make an SR experiment's data small (a folder of random photos for source=folder)."""
    source = raw.data.source
    if source == "digits":
        data = ["data.limit=32", "data.batch_size=4"]
    elif source == "photos":
        data = ["data.crop_size=16", "data.batch_size=2"]
    else:
        root = write_photos(tmp_path / "hr", 4)
        test = write_photos(tmp_path / "set5", 3, size=20)
        data = [f"data.root={root}", "data.crop_size=16", "data.batch_size=2", f"data.test_sets.Set5.hr={test}",
                f"data.test_sets.Set14.hr={test}", f"data.cache_dir={tmp_path / 'cache'}"]
    return data


def tiny(experiment: str, tmp_path: Path) -> list[str]:
    raw = OmegaConf.load(EXPERIMENTS_DIR / f"{experiment}.yaml")
    return [*COMMON, *tiny_model(raw), *tiny_data(raw, tmp_path)]


def train(experiment: str, run: Path, tmp_path: Path, steps: int, *extra: str) -> int:
    return main(["train", experiment, f"run.dir={run}", f"trainer.max_steps={steps}", *tiny(experiment, tmp_path),
                 *extra])


def metrics_rows(run: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))


def test_the_superres_experiments_are_the_shipped_ones() -> None:
    assert SUPERRES == ["esrgan_digits", "esrgan_photos", "srgan_digits", "srgan_div2k", "srgan_photos",
                        "srresnet_digits", "srresnet_div2k", "srresnet_photos"]


@pytest.mark.parametrize("experiment", SUPERRES)
def test_experiment_trains_a_few_steps(experiment: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert train(experiment, run, tmp_path, 2, "callbacks.samples.every_n_steps=2") == 0
    rows = [row for row in metrics_rows(run) if row.get("train/g_loss")]
    assert len(rows) == 2
    gan = OmegaConf.load(EXPERIMENTS_DIR / f"{experiment}.yaml").model.name != "srresnet"
    assert all(bool(row.get("train/d_loss")) == gan for row in rows)  # srresnet has no discriminator
    grid = Image.open(run / "samples" / "step_0000002.png")
    crop = 28 if "digits" in experiment else 16
    assert grid.size == (3 * (crop + 2) + 2, 4 * (crop + 2) + 2)  # 3 test images x rows LR, bicubic, SR, HR


def test_srgan_digits_chain_evaluate_upscale_interpolate(tmp_path: Path, capsys) -> None:
    from gan_lightning.loading import load_model

    pretrained = tmp_path / "psnr"
    assert train("srresnet_digits", pretrained, tmp_path, 3) == 0
    psnr_ckpt = pretrained / "checkpoints" / "last.ckpt"
    gan = tmp_path / "gan"
    assert train("srgan_digits", gan, tmp_path, 2, f"model.init_from={psnr_ckpt}", "model.lr_g=1e-12",
                 "model.lr_d=1e-12") == 0
    gan_ckpt = gan / "checkpoints" / "last.ckpt"
    before, after = load_model(psnr_ckpt).generator.state_dict(), load_model(gan_ckpt).generator.state_dict()
    # Started from the pre-trained G: two steps at lr 1e-12 leave it (up to batch norm statistics) where it was.
    assert all(torch.allclose(before[k], after[k], atol=1e-6) for k in before if before[k].is_floating_point()
               and "running" not in k)

    capsys.readouterr()
    assert train("srgan_digits", tmp_path / "wrong", tmp_path, 2, f"model.init_from={psnr_ckpt}",
                 "model.width_g=8") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: model.init_from: {psnr_ckpt} holds a generator that does not fit this model's "
                          "(srresnet x4, 1 channels, width 8, 1 blocks)") and "\n" not in err

    # On the three held-out photographs, in grey (the model's channels): quicker than the 500 held-out digits.
    assert main(["evaluate", str(psnr_ckpt), "data.source=photos", "data.channels=1"]) == 0
    scores = json.loads(capsys.readouterr().out)["photos_test"]
    assert scores["images"] == 3
    for key in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"):
        assert key in scores and key in scores["bicubic"]
    assert scores["bicubic"]["psnr_y"] > 10

    inputs = tmp_path / "lr"
    inputs.mkdir()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (9, 13), dtype=np.uint8)).save(inputs / "a.png")
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (6, 6, 3), dtype=np.uint8)).save(inputs / "b.png")
    out = tmp_path / "sr"
    # Tiles of 4 LR pixels with 12 of context: more than the tiny SRResNet's reach, so tiling changes nothing.
    assert main(["upscale", str(psnr_ckpt), "--input", str(inputs), "--out", str(out), "--tile", "4",
                 "--overlap", "12"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert Image.open(out / "a.png").size == (52, 36) and Image.open(out / "b.png").size == (24, 24)
    model = load_model(psnr_ckpt)
    lr = torch.from_numpy(np.asarray(Image.open(inputs / "a.png")))[None, None].float() / 127.5 - 1
    expected = model.upscale(lr)[0, 0].add(1).div(2).clamp(0, 1).mul(255).add(0.5).floor()
    written = torch.from_numpy(np.asarray(Image.open(out / "a.png").convert("L"))).float()  # grey saved as R=G=B
    assert (written - expected).abs().max() <= 1  # G's output of the whole image, to float rounding at .5
    capsys.readouterr()
    assert main(["upscale", str(psnr_ckpt), "--input", str(inputs), "--out", str(inputs / "sub")]) == 1
    assert "is inside the --input folder" in capsys.readouterr().err
    assert main(["upscale", str(psnr_ckpt), "--input", str(inputs / "a.png"), "--out", str(inputs)]) == 1
    assert "is the input image" in capsys.readouterr().err
    assert main(["upscale", str(psnr_ckpt), "--input", str(tmp_path / "none.png"), "--out", str(out)]) == 1
    assert capsys.readouterr().err.strip() == f"error: --input {tmp_path / 'none.png'} does not exist"

    blended = tmp_path / "blend.ckpt"
    assert main(["interpolate", str(psnr_ckpt), str(gan_ckpt), "--alpha", "0.8", "--out", str(blended)]) == 0
    a, b = load_model(psnr_ckpt).generator.state_dict(), load_model(gan_ckpt).generator.state_dict()
    mixed = load_model(blended).generator.state_dict()
    for key in a:
        if a[key].is_floating_point():
            assert torch.allclose(mixed[key], 0.2 * a[key] + 0.8 * b[key], atol=1e-7), key
    other = tmp_path / "other"
    assert train("srresnet_digits", other, tmp_path, 1, "model.n_blocks=2") == 0
    capsys.readouterr()
    assert main(["interpolate", str(psnr_ckpt), str(other / "checkpoints" / "last.ckpt"), "--out",
                 str(tmp_path / "x.ckpt")]) == 1
    err = capsys.readouterr().err.strip()
    assert "its generator is not the architecture of" in err and "it has blocks.1." in err and "\n" not in err
    assert main(["interpolate", str(psnr_ckpt), str(gan_ckpt), "--out", str(psnr_ckpt)]) == 1
    assert "which this command reads" in capsys.readouterr().err


@pytest.mark.parametrize("experiment", ["srresnet_digits", "esrgan_digits"])
def test_resume_is_exact(experiment: str, tmp_path: Path) -> None:
    extra = ("callbacks.checkpoint.every_n_steps=3", "callbacks.samples.every_n_steps=1000", "data.limit=16")
    assert train(experiment, tmp_path / "straight", tmp_path, 6, *extra) == 0  # over 2 epochs of 4 batches
    assert train(experiment, tmp_path / "split", tmp_path, 3, *extra) == 0
    assert train(experiment, tmp_path / "split", tmp_path, 6, *extra, "--resume") == 0
    straight = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=True)
    split = torch.load(tmp_path / "split" / "checkpoints" / "last.ckpt", weights_only=True)
    assert_same_state(straight, split)
    assert len(straight["optimizer_states"]) == (1 if experiment == "srresnet_digits" else 2)
