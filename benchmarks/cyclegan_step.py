"""CycleGAN training step: the framework against a plain PyTorch loop doing identical work, side by side.

Both train the paper's networks (ResNet generators with 9 blocks at 256 px and 6 at 128 px, 70x70 PatchGANs,
instance norm) from the same initial weights on the same batches (the unpaired datamodule's loader over a folder of
random images, batch 1, crop + flip), with the same pools of 50 past fakes, least-squares losses, cycle and
identity losses and Adam(2e-4, 0.5, 0.999); the plain loop freezes D during the G step as the CycleGAN code does.
Seconds per step are the median of ``--repeats`` alternating repeats, so background load hits both alike.
Target: framework / plain <= 1.05.

    python benchmarks/cyclegan_step.py --sizes 128 256 --steps 4
"""

from __future__ import annotations

import argparse
import copy
import itertools
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch
from omegaconf import OmegaConf
from train_step import endless, framework_seconds_per_step, paired_times

from datamodules.unpaired import UnpairedDataModule
from gan_lightning.models import CycleGAN
from gan_lightning.nets.layers import ImagePool


def write_random_folders(root: Path, size: int, count: int = 8) -> None:
    import numpy as np
    from PIL import Image

    generator = np.random.default_rng(0)
    for split in ("trainA", "trainB", "testA", "testB"):
        (root / split).mkdir(parents=True)
        for index in range(count):
            pixels = generator.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / split / f"{index}.png")


def plain_seconds(model: CycleGAN, datamodule: UnpairedDataModule, steps: int, warmup: int) -> float:
    g_ab, g_ba = model.generator["AB"], model.generator["BA"]
    d_a, d_b = model.discriminator["A"], model.discriminator["B"]
    opt_g = torch.optim.Adam(itertools.chain(g_ab.parameters(), g_ba.parameters()), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(itertools.chain(d_a.parameters(), d_b.parameters()), lr=2e-4, betas=(0.5, 0.999))
    pools = {"A": ImagePool(50, 0.5, 1234), "B": ImagePool(50, 0.5, 1235)}
    batches = endless(datamodule.train_dataloader())
    start = None
    for step in range(steps + warmup):
        if step == warmup:
            start = time.perf_counter()
        batch = next(batches)
        real_a, real_b = batch["A"], batch["B"]
        fake_b, fake_a = g_ab(real_a), g_ba(real_b)
        # D step on pooled, detached fakes
        d_loss = 0.0
        for d, real, fake, pool in ((d_a, real_a, fake_a, pools["A"]), (d_b, real_b, fake_b, pools["B"])):
            pooled = pool.query(fake.detach())
            d_loss = d_loss + 0.5 * ((d(real) - 1) ** 2).mean() + 0.5 * (d(pooled) ** 2).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        # G step with D frozen
        for d in (d_a, d_b):
            d.requires_grad_(False)
        adversarial = ((d_b(fake_b) - 1) ** 2).mean() + ((d_a(fake_a) - 1) ** 2).mean()
        cycle = (g_ba(fake_b) - real_a).abs().mean() + (g_ab(fake_a) - real_b).abs().mean()
        identity = (g_ab(real_b) - real_b).abs().mean() + (g_ba(real_a) - real_a).abs().mean()
        g_loss = adversarial + 10 * cycle + 5 * identity
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        for d in (d_a, d_b):
            d.requires_grad_(True)
        _ = (d_loss.item(), g_loss.item())  # the framework logs these every step
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[128, 256])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            write_random_folders(Path(tmp) / "data", size)
            config = OmegaConf.merge(OmegaConf.structured(UnpairedDataModule.Config), {
                "root": str(Path(tmp) / "data"), "load_size": size + size // 8, "crop_size": size,
                "cache_dir": str(Path(tmp) / "cache")})
            datamodule = UnpairedDataModule(config)
            datamodule.setup()
            torch.manual_seed(0)
            template = CycleGAN({}, (3, size, size))
            times = paired_times(
                lambda template=template, datamodule=datamodule: framework_seconds_per_step(
                    copy.deepcopy(template), datamodule, args.steps, args.warmup),
                lambda template=template, datamodule=datamodule: plain_seconds(
                    copy.deepcopy(template), datamodule, args.steps, args.warmup), args.repeats)
        f, p = statistics.median(times.first), statistics.median(times.second)
        print(f"CycleGAN step at {size} px (batch 1, {torch.get_num_threads()} threads, median of "
              f"{args.repeats}x{args.steps} steps): framework {f:.3f} s, plain loop {p:.3f} s, ratio {f / p:.3f} "
              "(target <= 1.05)", flush=True)


if __name__ == "__main__":
    main()
