"""The StyleGAN2 training step through the framework against a plain PyTorch loop doing identical work.

Both sides train the same networks (``gan_lightning.nets.stylegan2``, copied from one initial model) on the same
batches of the embedded digits (32 px, the stylegan2_digits recipe unless overridden), with the same losses and the
same random draws in the same order: per batch z -> G(z) (w_avg moves toward the batch's mean w, style mixing when
on), D's non-saturating logistic loss on reals and detached fakes (packed into D inputs of ``pack`` samples) plus,
every ``r1_interval`` batches, gamma / 2 * interval * R1 on the reals (double backward; mean over D's scores), G's
loss on the same fakes plus, every ``pl_interval`` batches when on, the path length term; Adam with the
lazy-regularisation adjustment (lr * k/(k+1), betas ** (k/(k+1))); then G's EMA with ramp-up. The plain loop reads
the two losses as scalars every batch (as the framework logs them).
tests/test_stylegan2_step_benchmark.py checks that both sides end with the same weights.

Seconds per step are medians over ``--repeats`` alternating pairs (framework then plain), so background load hits
both alike. Target: framework / plain <= 1.05.

    OMP_NUM_THREADS=1 python benchmarks/stylegan2_step.py [--steps 40] [--repeats 5] [--pl-weight 2 --style-mixing 0.9]
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import statistics
import time
import warnings
from typing import Any

import torch
from omegaconf import OmegaConf
from train_step import add_timing_arguments, framework_seconds_per_step, paired_times, timed_batches

from datamodules.digits import DigitsDataModule
from gan_lightning.config import EXPERIMENTS_DIR
from gan_lightning.losses import d_minimax, g_non_saturating
from gan_lightning.models.stylegan2 import StyleGAN2
from gan_lightning.nets.layers import pack_samples

HEURISTIC_BATCH = 32  # r1_gamma: null is 0.0002 * resolution^2 / 32 (the model does not know the batch)


def build(overrides: dict[str, Any], image_size: int = 32) -> StyleGAN2:
    """The stylegan2_digits recipe's model (with ``overrides``) for 1 x image_size x image_size samples."""
    recipe = OmegaConf.to_container(OmegaConf.load(EXPERIMENTS_DIR / "stylegan2_digits.yaml").model)
    return StyleGAN2({**recipe, **overrides}, (1, image_size, image_size))


def lazy_adam(params: Any, lr: float, betas: tuple[float, float], interval: int | None) -> torch.optim.Adam:
    """Adam for a player regularised every ``interval`` batches: lr * k/(k+1), betas ** (k/(k+1)) (None: as given)."""
    ratio = 1.0 if interval is None else interval / (interval + 1)
    return torch.optim.Adam(params, lr=lr * ratio, betas=(betas[0] ** ratio, betas[1] ** ratio))


def ema_decay(decay: float, rampup: float | None, batches_done: int) -> float:
    """The per-batch decay with the reference's ramp-up: half-life at most ``rampup`` x the batches done."""
    if rampup is None:
        return decay
    half_life = min(math.log(0.5) / math.log(decay), batches_done * rampup)
    return 0.5 ** (1.0 / half_life) if half_life > 0 else 0.0


def plain_seconds_per_step(model: StyleGAN2, datamodule: DigitsDataModule, steps: int, warmup: int) -> float:
    """Train ``model``'s networks in place with a hand-written loop; seconds per batch after ``warmup`` batches."""
    c = model.config
    G, D, G_ema = model.generator, model.discriminator, model.generator_ema
    gamma = c.r1_gamma if c.r1_gamma is not None else 0.0002 * model.sample_shape[-1] ** 2 / HEURISTIC_BATCH
    path_length = c.pl_weight > 0
    opt_d = lazy_adam(D.parameters(), c.lr_d, (c.beta1, c.beta2), c.r1_interval if gamma > 0 else None)
    opt_g = lazy_adam(G.parameters(), c.lr_g, (c.beta1, c.beta2), c.pl_interval if path_length else None)
    pl_mean = torch.zeros(())

    def score(x: torch.Tensor) -> torch.Tensor:  # PacGAN: one score per pack of c.pack samples (1: per sample)
        return D(pack_samples(x, c.pack))

    datamodule.setup()
    clock: dict[str, float] = {}
    for step, (real, _) in timed_batches(datamodule.train_dataloader(), steps, warmup, clock):
        fakes = G(torch.randn(real.shape[0], c.latent_dim))  # training mode: w_avg update, style mixing

        real_logits, fake_logits = score(real), score(fakes.detach())
        d_loss = d_minimax(real_logits, fake_logits)
        if gamma > 0 and step % c.r1_interval == 0:  # lazy R1 on the reals, weighted by its interval
            x = real.detach().requires_grad_(True)
            logits = score(x)
            (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
            d_loss = d_loss + gamma / 2 * c.r1_interval * grad.square().sum() / logits.numel()  # mean over scores
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        D.requires_grad_(False)
        g_loss = g_non_saturating(score(fakes))
        if path_length and step % c.pl_interval == 0:
            ws = G.training_ws(torch.randn(max(1, real.shape[0] // c.pl_batch_shrink), c.latent_dim))
            images = G.synthesis(ws)
            noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
            (grads,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
            lengths = grads.square().sum(2).mean(1).sqrt()
            new_mean = pl_mean.lerp(lengths.mean(), c.pl_decay)
            pl_mean = new_mean.detach()
            g_loss = g_loss + c.pl_weight * c.pl_interval * (lengths - new_mean).square().mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        D.requires_grad_(True)

        with torch.no_grad():  # G's EMA (its buffers, w_avg and noise maps, copied)
            decay = ema_decay(c.ema_decay, c.ema_rampup, step)
            for averaged, param in zip(G_ema.parameters(), G.parameters(), strict=True):
                averaged.lerp_(param, 1.0 - decay)
            for averaged, buffer in zip(G_ema.buffers(), G.buffers(), strict=True):
                averaged.copy_(buffer)
        _ = (d_loss.item(), g_loss.item())  # the framework logs these every batch
    if path_length:
        model.pl_mean.copy_(pl_mean)
    return (time.perf_counter() - clock["start"]) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_timing_arguments(parser, steps=40, warmup=3, repeats=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pl-weight", type=float, default=None, help="override the recipe's (0: off)")
    parser.add_argument("--style-mixing", type=float, default=None, help="override the recipe's (0: off)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    overrides = {key: value for key, value in (("pl_weight", args.pl_weight), ("style_mixing", args.style_mixing))
                 if value is not None}
    torch.manual_seed(0)
    template = build(overrides)
    datamodule = DigitsDataModule(image_size=32, batch_size=args.batch_size)
    datamodule.setup()
    times = paired_times(
        lambda: framework_seconds_per_step(copy.deepcopy(template), datamodule, args.steps, args.warmup),
        lambda: plain_seconds_per_step(copy.deepcopy(template), datamodule, args.steps, args.warmup), args.repeats)
    f, p = statistics.median(times.first), statistics.median(times.second)
    c = template.config
    print(f"stylegan2 step (stylegan2_digits nets: 32 px, channel_base {c.channel_base}, channel_max "
          f"{c.channel_max}, {c.mapping_layers} mapping layers; batch {args.batch_size}, D packs of {c.pack}; "
          f"R1 every {c.r1_interval}, "
          f"path length {'every ' + str(c.pl_interval) if c.pl_weight > 0 else 'off'}, style mixing {c.style_mixing}, "
          f"EMA; {torch.get_num_threads()} threads, median of {args.repeats} pairs x {args.steps} steps)")
    print(f"  framework  {1000 * f:8.2f} ms/step")
    print(f"  plain loop {1000 * p:8.2f} ms/step")
    print(f"  ratio framework/plain = {f / p:.3f}, per pair {times.ratio_summary()}  (target <= 1.05)")


if __name__ == "__main__":
    main()
