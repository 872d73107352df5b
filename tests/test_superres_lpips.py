"""`gan-lightning evaluate` on a super-resolution checkpoint with LPIPS: both weight files give `lpips` per test set
for SR and bicubic (the mean of LPIPS on the 8-bit images, whole size); without them a note; one of them alone, or a
wrong one, is one error line before any work."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from gan_lightning.cli import main
from gan_lightning.config import validate
from gan_lightning.loading import load_model
from gan_lightning.metrics.perceptual import lpips_vgg
from gan_lightning.metrics.pixel import quantize
from gan_lightning.superres_eval import bicubic_upscale
from gan_lightning.train import build_datamodule
from tests.test_superres_experiments import train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from check_lpips import seeded_lpips_state, seeded_vgg16_state  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A one-step tiny srresnet on a folder of 24 px photos, with two test sets of three 20 px photos (x4)."""
    tmp_path = tmp_path_factory.mktemp("sr")
    assert train("srresnet_div2k", tmp_path / "run", tmp_path, 1) == 0
    return tmp_path / "run" / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("weights")
    torch.save(seeded_vgg16_state(), folder / "vgg16.pth")
    torch.save(seeded_lpips_state(), folder / "lpips_vgg.pth")
    return str(folder / "vgg16.pth"), str(folder / "lpips_vgg.pth")


def _reports(checkpoint: Path) -> list[Path]:
    return sorted(checkpoint.parent.parent.glob("evaluation_*.json"))


def test_wrong_or_partial_lpips_files_are_one_line_before_any_work(checkpoint, weight_files, tmp_path, capsys) -> None:
    vgg, lin = weight_files
    (tmp_path / "garbage.pth").write_bytes(b"not a torch file")
    cases = [
        (["--lpips-weights", lin], "error: --lpips-weights: LPIPS of a super-resolution checkpoint needs both weight "
                                   "files; give --vgg-weights (torchvision's vgg16-397923af.pth) too"),
        (["--vgg-weights", vgg], "give --lpips-weights (the lpips package's weights/v0.1/vgg.pth) too"),
        (["--vgg-weights", vgg, "--lpips-weights", str(tmp_path / "garbage.pth")],
         f"error: --lpips-weights: {tmp_path / 'garbage.pth'} cannot be read as a weights file"),
        (["--vgg-weights", str(tmp_path / "none.pth"), "--lpips-weights", lin],
         f"error: --vgg-weights: {tmp_path / 'none.pth'} does not exist (torchvision's vgg16 file"),
        (["--vgg-weights", lin, "--lpips-weights", lin], "lacks features.0.weight"),
        (["--vgg-weights", vgg, "--lpips-weights", vgg], "lacks lin0.model.1.weight"),
    ]
    for options, message in cases:
        assert main(["evaluate", str(checkpoint), *options]) == 1
        out, err = capsys.readouterr()
        assert out == "" and message in err and err.count("\n") == 1, err
    assert _reports(checkpoint) == []  # nothing evaluated, nothing written


def test_evaluate_reports_lpips_of_sr_and_bicubic(checkpoint, weight_files, capsys) -> None:
    assert main(["evaluate", str(checkpoint)]) == 0
    out, err = capsys.readouterr()
    plain = json.loads(out)
    assert "lpips" not in plain["Set5"] and "lpips" not in plain["Set5"]["bicubic"]
    assert err.count("note: no LPIPS; to report it give --vgg-weights") == 1

    vgg, lin = weight_files
    assert main(["evaluate", str(checkpoint), "--vgg-weights", vgg, "--lpips-weights", lin]) == 0
    out, err = capsys.readouterr()
    scores = json.loads(out)
    assert "note: no LPIPS" not in err
    model, lpips = load_model(str(checkpoint)), lpips_vgg(vgg, lin)
    test_sets = build_datamodule(validate(OmegaConf.create(model.hparams["experiment"]))).test_sets()
    assert list(test_sets) == ["Set5", "Set14"]
    for name, pairs in test_sets.items():
        entry = scores[name]
        # everything else as without LPIPS
        assert {k: v for k, v in entry.items() if k != "lpips"} == {
            **plain[name], "bicubic": {**plain[name]["bicubic"], "lpips": entry["bicubic"]["lpips"]}}

        def on_levels(images: torch.Tensor) -> torch.Tensor:  # what a saved 8-bit PNG holds, back in [-1, 1]
            return quantize(images).float() / 127.5 - 1

        with torch.no_grad():
            expected_sr = sum(float(lpips(on_levels(model.upscale(lr).cpu()), hr)) for lr, hr in pairs) / len(pairs)
            expected_bicubic = sum(float(lpips(on_levels(bicubic_upscale(lr, 4)), hr)) for lr, hr in pairs) / len(pairs)
        assert entry["lpips"] == pytest.approx(expected_sr, abs=1e-6)
        assert entry["bicubic"]["lpips"] == pytest.approx(expected_bicubic, abs=1e-6)
        assert entry["lpips"] > 0 and entry["bicubic"]["lpips"] > 0 and entry["lpips"] != entry["bicubic"]["lpips"]
