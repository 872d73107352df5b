"""Super-resolution training step, framework against a plain PyTorch loop doing identical work, and upscaling
throughput.

Steps: SRResNet (pixel MSE, G alone) and SRGAN (content loss on VGG19 relu5_4 with random weights, 1e-3 x
non-saturating GAN loss, D on HR and SR), both from the same initial weights on the same batches (random HR crops and
their 4x average-pooled LR, from one in-memory loader), Adam(1e-4, 0.9, 0.999). Seconds per step are the median of
``--repeats`` alternating repeats, so background load hits both alike. Target: framework / plain <= 1.05.

Throughput: output megapixels per second of ``gan-lightning upscale``'s path (``upscale_tiled`` over the model's
``upscale``, eval mode, no grad) on an LR image of ``--image`` px with ``--tile`` / ``--overlap``.

    python benchmarks/superres_step.py --width 64 --blocks 16 --crop 48 --batch 4 --steps 6
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import time
import warnings

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from train_step import endless, framework_seconds_per_step, paired_times

from gan_lightning.models import SRGAN, SRResNetModel
from gan_lightning.models.superres import SuperResolutionModel


class RandomPairs(Dataset):
    def __init__(self, n: int, crop: int, scale: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.hr = torch.rand(n, 3, crop, crop, generator=generator) * 2 - 1
        self.lr = F.avg_pool2d(self.hr, scale)

    def __len__(self) -> int:
        return len(self.hr)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"lr": self.lr[index], "hr": self.hr[index]}


class PairsData(L.LightningDataModule):
    def __init__(self, crop: int, scale: int, batch: int) -> None:
        super().__init__()
        self.pairs, self.batch = RandomPairs(8 * batch, crop, scale), batch

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.pairs, batch_size=self.batch, drop_last=True)


def plain_seconds(model: SuperResolutionModel, data: PairsData, steps: int, warmup: int) -> float:
    g, d = model.generator, model.discriminator
    vgg = model.perceptual_network() if d is not None else None
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.9, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-4, betas=(0.9, 0.999)) if d is not None else None
    batches = endless(data.train_dataloader())
    start = None
    for step in range(steps + warmup):
        if step == warmup:
            start = time.perf_counter()
        batch = next(batches)
        lr, hr = batch["lr"], batch["hr"]
        sr = g(lr)
        if d is None:
            g_loss = F.mse_loss(sr, hr)
        else:
            real_scores, fake_scores = d(hr), d(sr.detach())
            d_loss = F.binary_cross_entropy_with_logits(real_scores, torch.ones_like(real_scores)) + \
                F.binary_cross_entropy_with_logits(fake_scores, torch.zeros_like(fake_scores))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            d.requires_grad_(False)
            fake_scores = d(sr)
            with torch.no_grad():
                target = vgg(hr)
            g_loss = F.mse_loss(vgg(sr), target) / 12.75 + 1e-3 * F.binary_cross_entropy_with_logits(
                fake_scores, torch.ones_like(fake_scores))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if d is not None:
            d.requires_grad_(True)
    return (time.perf_counter() - start) / steps


def throughput(model: SuperResolutionModel, image: int, tile: int, overlap: int, repeats: int) -> float:
    from gan_lightning.superres_eval import upscale_tiled

    lr = torch.rand(1, 3, image, image) * 2 - 1
    upscale_tiled(model.upscale, lr, model.scale, tile, overlap)  # warm-up
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        upscale_tiled(model.upscale, lr, model.scale, tile, overlap)
        seconds.append(time.perf_counter() - start)
    return (image * model.scale) ** 2 / 1e6 / statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--crop", type=int, default=48, help="HR crop (the paper: 96)")
    parser.add_argument("--batch", type=int, default=4, help="(the paper: 16)")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["srresnet", "srgan"], choices=["srresnet", "srgan"])
    parser.add_argument("--image", type=int, default=128, help="LR side for the throughput")
    parser.add_argument("--tile", type=int, default=64)
    parser.add_argument("--overlap", type=int, default=8)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    shape, sizes = (3, args.crop, args.crop), {"width_g": args.width, "n_blocks": args.blocks}
    data = PairsData(args.crop, 4, args.batch)
    threads = torch.get_num_threads()
    builders = {"srresnet": lambda: SRResNetModel(sizes, shape, scale=4),
                "srgan": lambda: SRGAN({**sizes, "vgg_random_weights": True}, shape, scale=4)}
    for name in args.models:
        build = builders[name]
        torch.manual_seed(0)
        template = build()
        if isinstance(template, SRGAN):
            template.perceptual_network()  # built once, outside the timing, and copied to both sides
        times = paired_times(
            lambda template=template: framework_seconds_per_step(copy.deepcopy(template), data, args.steps,
                                                                  args.warmup),
            lambda template=template: plain_seconds(copy.deepcopy(template), data, args.steps, args.warmup),
            args.repeats)
        f, p = statistics.median(times.first), statistics.median(times.second)
        print(f"{name} step (width {args.width}, {args.blocks} blocks, x4, {args.crop} px HR crops, batch "
              f"{args.batch}, {threads} threads, median of {args.repeats}x{args.steps} steps): framework {f:.3f} s, "
              f"plain loop {p:.3f} s, ratio {f / p:.3f} (target <= 1.05)", flush=True)
    model = SRResNetModel(sizes, shape, scale=4).eval()
    rate = throughput(model, args.image, args.tile, args.overlap, args.repeats)
    print(f"upscale throughput (srresnet width {args.width}, {args.blocks} blocks, x4, {args.image} px LR -> "
          f"{args.image * 4} px, tile {args.tile}, overlap {args.overlap}, {threads} threads): {rate:.3f} "
          "megapixels/s", flush=True)


if __name__ == "__main__":
    main()
