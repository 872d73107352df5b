"""Bicubic baseline of the superres test sets, and imresize against MATLAB's own outputs.

    python benchmarks/superres_bicubic.py [--matlab DIR]

Prints, per source (digits at x4, photos at x2/x3/x4), the PSNR/SSIM on Y and RGB of MATLAB-bicubic upscaling of the
test LR images (the baseline a super-resolution model must beat), and with ``--matlab DIR`` (a checkout of
github.com/xinntao/matlab_functions_verification, or its ``imresize_bicubic`` folder) how many uint8 values of
``imresize`` differ from MATLAB's published outputs for baboon.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from datamodules.superres import PHOTOS_TEST, SuperResDataModule
from gan_lightning.imresize import imresize
from gan_lightning.superres_eval import evaluate_superres, score_pair


def bicubic_baseline() -> dict:
    results = {}
    for source, crop, scales in (("digits", 28, (4,)), ("photos", 96, (4, 3, 2))):
        for scale in scales:
            module = SuperResDataModule(source=source, scale=scale, crop_size=crop - crop % scale)
            scores = evaluate_superres(lambda lr, s=scale: imresize(lr, s), module.test_sets(), scale)
            for name, entry in scores.items():
                results[f"{name} x{scale}"] = {"images": entry["images"],
                                               **{k: round(v, 4) for k, v in entry["bicubic"].items()}}
            if source == "photos" and scale == 4:
                for photo, (lr, hr) in zip(PHOTOS_TEST, module.test_sets()["photos_test"], strict=True):
                    per_image = score_pair(imresize(lr, 4), hr, 4)
                    results[f"photos_test x4 {photo}"] = {k: round(v, 4) for k, v in per_image.items()}
    return results


def against_matlab(folder: Path) -> dict:
    from PIL import Image

    folder = folder / "imresize_bicubic" if (folder / "imresize_bicubic").is_dir() else folder

    def read(name: str) -> torch.Tensor:
        return torch.from_numpy(np.array(Image.open(folder / name).convert("RGB"))).permute(2, 0, 1).double()

    source = read("baboon.png")
    results = {}
    for mode, factor in (("down", 2), ("down", 3), ("down", 4), ("up", 2), ("up", 3)):
        path = folder / f"baboon_{mode}_x{factor}_matlab.png"
        if not path.is_file():
            continue
        ours = (imresize(source, 1 / factor if mode == "down" else factor) + 0.5).floor().clamp(0, 255)
        difference = ours - read(path.name)
        results[f"{mode} x{factor}"] = {"values": difference.numel(), "differ": int((difference != 0).sum()),
                                        "max_levels": float(difference.abs().max())}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matlab", type=Path, help="folder with baboon.png and MATLAB's baboon_*_matlab.png")
    args = parser.parse_args()
    torch.set_num_threads(1)
    report = {"bicubic": bicubic_baseline()}
    if args.matlab:
        report["imresize_vs_matlab"] = against_matlab(args.matlab)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
