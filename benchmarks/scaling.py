"""Scaling figures, measured side by side in one run.

``steps``: the framework's training step (Lightning Trainer, manual optimization, the divergence guard, per-step
logging to a CSV logger every 50 batches) against a plain PyTorch loop doing the same work: the same networks and
initial weights, the same device-resident batches, one G forward per batch, the D step on detached fakes, the G
step every n_critic batches, the same losses and Adam settings (fused Adam on GPUs on both sides), and under
16-mixed one GradScaler for both optimizers (the gradient penalty by PyTorch's AMP recipe), under bf16-mixed
autocast alone. Both loops read their losses once per batch, as a loop that logs them would. Recipes:

  dcgan64    DCGAN nets (width 64, batchnorm), 3x64x64, batch 128, non-saturating, Adam(2e-4, 0.5, 0.999)
  wgan_gp32  DCGAN nets, layer-norm critic, 3x32x32, batch 64, Wasserstein + 10 x GP, n_critic 5, Adam(1e-4, 0, 0.9)
  dcgan28    the shipped dcgan_mnist nets at width 32, 1x28x28, batch 64 (the CPU row)
  toy        gan_grid's MLPs (3 x 128 hidden, 2-D points, latent 2), batch 1000, Adam(1e-3, 0.5, 0.999)

``--speedups`` adds framework rows with model.channels_last and model.compile, and cudnn.benchmark on/off.

``ddp``: images/s of `gan-lightning train` on 2 CPU processes (gloo) against 1, the same per-process batch, from
the wall time of a long and a short run (start-up cancels out).

``allocator``: `gan-lightning train dcgan_mnist` as shipped, with glibc keeping freed memory (run.keep_freed_memory,
the default; gan_lightning/allocator.py) against returning it to the system: training seconds and peak memory.

Usage:
  python benchmarks/scaling.py steps --device cpu --recipes dcgan28 wgan_gp32 toy --threads 1 --pin-cpu 1 \
      --repeats 10 --steps 40
  python benchmarks/scaling.py steps --device cuda --recipes dcgan64 wgan_gp32 \
      --precisions 32 16-mixed bf16-mixed --speedups
  python benchmarks/scaling.py steps --device cuda --recipes dcgan64 --batch-size 512   (a GPU-bound batch)
  python benchmarks/scaling.py ddp
  python benchmarks/scaling.py allocator --steps 300 --repeats 3
Framework and plain alternate within each repeat; the times are medians over repeats and the ratio is the median of
the per-repeat ratios (with its interquartile range), so background load hits both sides of a pair alike.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import StepTimer, add_timing_arguments, paired_times  # noqa: E402

from gan_lightning.allocator import keep_freed_memory  # noqa: E402
from gan_lightning.models import DCGAN, WGANGP, VanillaGAN  # noqa: E402


@dataclass
class Recipe:
    model: type
    config: dict[str, Any]
    shape: tuple[int, ...]
    batch_size: int
    loss: str  # non_saturating | wasserstein
    lr: float
    betas: tuple[float, float]
    penalty: float = 0.0
    n_critic: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


RECIPES = {
    "dcgan64": Recipe(DCGAN, {"width_g": 64, "width_d": 64, "latent_dim": 100}, (3, 64, 64), 128, "non_saturating",
                      2e-4, (0.5, 0.999)),
    "wgan_gp32": Recipe(WGANGP, {"width_g": 64, "width_d": 64, "latent_dim": 128}, (3, 32, 32), 64, "wasserstein",
                        1e-4, (0.0, 0.9), penalty=10.0, n_critic=5),
    "dcgan28": Recipe(DCGAN, {"width_g": 32, "width_d": 32, "latent_dim": 100}, (1, 28, 28), 64, "non_saturating",
                      2e-4, (0.5, 0.999)),
    "toy": Recipe(VanillaGAN, {"hidden_g": [128] * 3, "hidden_d": [128] * 3, "latent_dim": 2, "lr_g": 1e-3,
                               "lr_d": 1e-3}, (2,), 1000, "non_saturating", 1e-3, (0.5, 0.999)),
}

AMP_DTYPES = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}


class DeviceBatches:
    """An endless loader of pre-made batches already on the device: both loops pay nothing for data."""

    def __init__(self, shape: tuple[int, ...], batch_size: int, device: torch.device, count: int = 8):
        generator = torch.Generator().manual_seed(0)
        self.batches = [(torch.rand(batch_size, *shape, generator=generator) * 2 - 1).to(device)
                        for _ in range(count)]

    def __iter__(self) -> Iterator[Tensor]:
        index = 0
        while True:
            yield self.batches[index % len(self.batches)]
            index += 1

    def __len__(self) -> int:
        return 10**9


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class DeviceStepTimer(StepTimer):
    """StepTimer that waits for the device's queued work at both ends of the timed window."""

    def __init__(self, warmup: int, device: torch.device):
        super().__init__(warmup)
        self.device = device

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.warmup:
            synchronize(self.device)
        super().on_train_batch_start(trainer, pl_module, batch, batch_idx)

    def on_train_end(self, trainer, pl_module):
        synchronize(self.device)
        super().on_train_end(trainer, pl_module)


def build_model(recipe: Recipe, **options: Any) -> L.LightningModule:
    torch.manual_seed(0)
    config = {**recipe.config, "lr_g": recipe.lr, "lr_d": recipe.lr, "beta1": recipe.betas[0],
              "beta2": recipe.betas[1], **options}
    return recipe.model(config, recipe.shape)


def framework_seconds(model: L.LightningModule, data: DeviceBatches, device: torch.device, precision: str,
                      steps: int, warmup: int, benchmark: bool | None = None) -> float:
    timer = DeviceStepTimer(warmup, device)
    with tempfile.TemporaryDirectory() as logs:
        trainer = L.Trainer(max_steps=steps + warmup, accelerator=device.type, devices=1, precision=precision,
                            logger=CSVLogger(logs), log_every_n_steps=50, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, callbacks=[timer],
                            benchmark=benchmark)
        trainer.fit(model, data)
    return (timer.end - timer.start) / steps


def plain_penalty(critic: nn.Module, real: Tensor, fake: Tensor, scaler: torch.amp.GradScaler) -> Tensor:
    """(||grad C(x_hat)|| - 1)^2 with PyTorch's AMP recipe: scaled outputs into autograd.grad, unscaled gradients."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    scores = critic(x_hat)
    seed = scaler.get_scale() / scores.numel() if scaler.is_enabled() else 1.0
    (grads,) = torch.autograd.grad(scores.sum() * seed, x_hat, create_graph=True)
    return ((grads.float() / seed).flatten(1).norm(2, dim=1) - 1).pow(2).mean()


def plain_seconds(model: L.LightningModule, recipe: Recipe, data: DeviceBatches, device: torch.device,
                  precision: str, steps: int, warmup: int) -> float:
    G, D = model.generator.to(device), model.discriminator.to(device)
    fused = device.type == "cuda" or None  # as the framework picks: the same optimizer kernels on both sides
    opt_d = torch.optim.Adam(D.parameters(), lr=recipe.lr, betas=recipe.betas, fused=fused)
    opt_g = torch.optim.Adam(G.parameters(), lr=recipe.lr, betas=recipe.betas, fused=fused)
    amp_dtype = AMP_DTYPES.get(precision)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "16-mixed")
    latent_dim = recipe.config["latent_dim"]

    def autocast() -> Any:
        return torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()

    def d_loss_fn(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        if recipe.loss == "wasserstein":
            return fake_scores.mean() - real_scores.mean()
        return (F.binary_cross_entropy_with_logits(real_scores, torch.ones_like(real_scores))
                + F.binary_cross_entropy_with_logits(fake_scores, torch.zeros_like(fake_scores)))

    def g_loss_fn(fake_scores: Tensor) -> Tensor:
        if recipe.loss == "wasserstein":
            return -fake_scores.mean()
        return F.binary_cross_entropy_with_logits(fake_scores, torch.ones_like(fake_scores))

    def update(optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    batches = iter(data)
    start = None
    for step in range(steps + warmup):
        if step == warmup:
            synchronize(device)
            start = time.perf_counter()
        real = next(batches)
        generator_turn = (step + 1) % recipe.n_critic == 0
        with autocast():
            with torch.set_grad_enabled(generator_turn):
                fake = G(torch.randn(real.shape[0], latent_dim, device=device))
            d_loss = d_loss_fn(D(real), D(fake.detach()))
            if recipe.penalty:
                d_loss = d_loss + recipe.penalty * plain_penalty(D, real, fake.detach(), scaler)
        for param in G.parameters():  # as the framework's toggle: no G gradients in the D step
            param.requires_grad_(False)
        update(opt_d, d_loss)
        for param in G.parameters():
            param.requires_grad_(True)
        losses = [d_loss]
        if generator_turn:
            for param in D.parameters():
                param.requires_grad_(False)
            with autocast():
                g_loss = g_loss_fn(D(fake))
            update(opt_g, g_loss)
            for param in D.parameters():
                param.requires_grad_(True)
            losses.append(g_loss)
        _ = [loss.item() for loss in losses]  # read once per batch, as a loop that logs them would
    synchronize(device)
    return (time.perf_counter() - start) / steps


def run_steps(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    print(f"device {device}{' (' + torch.cuda.get_device_name() + ')' if device.type == 'cuda' else ''}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, lightning {L.__version__}; "
          f"median of {args.repeats} x {args.steps} steps after {args.warmup} warm-up")
    print(f"{'recipe':10s} {'precision':11s} {'variant':22s} {'framework ms':>12s} {'plain ms':>9s} "
          f"{'images/s':>9s}  ratio: median of pairs [interquartile range]")
    for name in args.recipes:
        recipe = RECIPES[name]
        if args.batch_size:
            recipe = dataclasses.replace(recipe, batch_size=args.batch_size)
        data = DeviceBatches(recipe.shape, recipe.batch_size, device)
        for precision in args.precisions:
            template = build_model(recipe)
            times = paired_times(
                lambda template=template, precision=precision, data=data: framework_seconds(
                    copy.deepcopy(template), data, device, precision, args.steps, args.warmup),
                lambda template=template, precision=precision, recipe=recipe, data=data: plain_seconds(
                    copy.deepcopy(template), recipe, data, device, precision, args.steps, args.warmup), args.repeats)
            framework, plain = statistics.median(times.first), statistics.median(times.second)
            print(f"{name:10s} {precision:11s} {'default':22s} {1000 * framework:12.2f} {1000 * plain:9.2f} "
                  f"{recipe.batch_size / framework:9.0f}  {times.ratio_summary()}", flush=True)
            if not args.speedups or len(recipe.shape) != 3:
                continue
            variants: list[tuple[str, dict[str, Any], bool | None]] = [
                ("channels_last", {"channels_last": True}, None), ("compile", {"compile": True}, None),
                ("channels_last+compile", {"channels_last": True, "compile": True}, None)]
            if device.type == "cuda":
                variants.append(("cudnn.benchmark", {}, True))
            for label, options, benchmark in variants:
                try:
                    model = build_model(recipe, **options)
                    seconds = statistics.median(
                        framework_seconds(copy.deepcopy(model) if not options.get("compile") else model, data,
                                          device, precision, args.steps, args.warmup, benchmark)
                        for _ in range(args.repeats))
                except Exception as error:  # report what fails (e.g. compile and double backward), go on
                    print(f"{name:10s} {precision:11s} {label:22s} failed: {' '.join(str(error).split())[:160]}")
                    continue
                print(f"{name:10s} {precision:11s} {label:22s} {1000 * seconds:12.2f} {'':9s} "
                      f"{recipe.batch_size / seconds:9.0f}  {framework / seconds:5.2f}x speedup over default",
                      flush=True)


def cli_seconds(processes: int, steps: int, data_root: Path, threads: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "gan_lightning", "train", "dcgan_mnist", f"data.root={data_root}",
                   "data.split=test", "data.download=false", "data.batch_size=64", f"trainer.max_steps={steps}",
                   f"run.dir={tmp}/run", "run.quiet=true",
                   "callbacks.metrics.enabled=false", "callbacks.samples.every_n_steps=100000",
                   "callbacks.checkpoint.every_n_steps=100000", "trainer.accelerator=cpu",
                   f"trainer.devices={processes}"]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        start = time.perf_counter()
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode:
            raise SystemExit(f"{' '.join(command)} failed: {result.stderr.strip()[-300:]}")
        return time.perf_counter() - start


def run_ddp(args: argparse.Namespace) -> None:
    print(f"gan-lightning train dcgan_mnist (batch 64 per process) on CPU, {args.threads} thread(s) per process; "
          f"per-batch time = (wall({args.long}) - wall({args.short})) / {args.long - args.short}")
    per_batch = {}
    for processes in (1, 2):
        long_runs = [cli_seconds(processes, args.long, args.data_root, args.threads) for _ in range(args.repeats)]
        short_runs = [cli_seconds(processes, args.short, args.data_root, args.threads) for _ in range(args.repeats)]
        per_batch[processes] = (statistics.median(long_runs) - statistics.median(short_runs)) / (args.long - args.short)
        images = 64 * processes / per_batch[processes]
        print(f"  {processes} process(es): {1000 * per_batch[processes]:7.1f} ms/batch, {images:7.1f} images/s")
    print(f"  2-process throughput / 1-process = {per_batch[1] * 2 / per_batch[2]:.2f}x (ideal 2.00x)")


def fit_seconds_and_peak_memory(steps: int, data_root: Path, *extra: str) -> tuple[float, float]:
    """`gan-lightning train dcgan_mnist` as shipped (sample grids, the FID evaluation at the end): its training
    seconds (summary.json, start-up excluded) and its peak resident memory in GiB (data workers included)."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "gan_lightning", "train", "dcgan_mnist", f"data.root={data_root}",
                   "data.split=test", "data.download=false", f"trainer.max_steps={steps}", f"run.dir={tmp}/run",
                   "run.quiet=true", *extra]
        with open(f"{tmp}/stderr", "w") as stderr:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
            _, status, usage = os.wait4(process.pid, 0)  # the child's own peak RSS, which RUSAGE_CHILDREN merges
        if os.waitstatus_to_exitcode(status):
            raise SystemExit(f"{' '.join(command)} failed: {Path(tmp, 'stderr').read_text().strip()[-300:]}")
        seconds = json.loads(Path(tmp, "run", "summary.json").read_text())["seconds"]
        return seconds, usage.ru_maxrss / 2**20  # KiB on Linux


def run_allocator(args: argparse.Namespace) -> None:
    """glibc keeping freed memory (run.keep_freed_memory, the default) against handing it back to the system."""
    print(f"gan-lightning train dcgan_mnist trainer.max_steps={args.steps} as shipped, {torch.get_num_threads()} "
          f"threads; training seconds and peak memory, medians of {args.repeats}, the settings alternating")
    runs: dict[str, list[tuple[float, float]]] = {"true": [], "false": []}
    fit_seconds_and_peak_memory(10, args.data_root)  # warm-up: the first run also fills the file cache (data, weights)
    for _ in range(args.repeats):
        for setting, results in runs.items():
            results.append(fit_seconds_and_peak_memory(args.steps, args.data_root, f"run.keep_freed_memory={setting}"))
    seconds = {setting: statistics.median(s for s, _ in results) for setting, results in runs.items()}
    for setting, results in runs.items():
        print(f"  run.keep_freed_memory={setting:5s}: {seconds[setting]:6.1f} s "
              f"({', '.join(f'{s:.1f}' for s, _ in results)}), peak memory "
              f"{', '.join(f'{gib:.2f}' for _, gib in results)} GiB")
    print(f"  kept / returned training time = {seconds['true'] / seconds['false']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    steps = sub.add_parser("steps")
    steps.add_argument("--device", default="cpu")
    steps.add_argument("--recipes", nargs="+", default=["dcgan28", "wgan_gp32", "toy"], choices=list(RECIPES))
    steps.add_argument("--precisions", nargs="+", default=["32"])
    add_timing_arguments(steps, steps=50, warmup=10)
    steps.add_argument("--threads", type=int, default=None)
    steps.add_argument("--speedups", action="store_true")
    steps.add_argument("--batch-size", type=int, default=None, help="instead of each recipe's batch size")
    steps.add_argument("--pin-cpu", type=int, default=None, metavar="CORE",
                       help="run on this CPU core only (Linux): no migration between cores mid-run")
    steps.add_argument("--keep-freed-memory", action="store_true",
                       help="glibc's heap thresholds as `gan-lightning train` sets them, for both loops")
    data_root = Path(__file__).resolve().parents[2] / "shared" / "data"
    ddp = sub.add_parser("ddp")
    ddp.add_argument("--short", type=int, default=10)
    ddp.add_argument("--long", type=int, default=60)
    ddp.add_argument("--repeats", type=int, default=2)
    ddp.add_argument("--threads", type=int, default=1)
    ddp.add_argument("--data-root", type=Path, default=data_root)
    allocator = sub.add_parser("allocator")
    allocator.add_argument("--steps", type=int, default=300)
    allocator.add_argument("--repeats", type=int, default=3)
    allocator.add_argument("--data-root", type=Path, default=data_root)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    if args.command == "steps":
        if args.threads:
            torch.set_num_threads(args.threads)
        if args.pin_cpu is not None:
            os.sched_setaffinity(0, {args.pin_cpu})
        if args.keep_freed_memory and not keep_freed_memory():
            raise SystemExit("--keep-freed-memory: no glibc here")
        run_steps(args)
    elif args.command == "ddp":
        run_ddp(args)
    else:
        run_allocator(args)


if __name__ == "__main__":
    main()
