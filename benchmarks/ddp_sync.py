"""How to synchronise gradients for alternating D/G updates under DDP, measured on 2 CPU processes (gloo).

Two ways, the same DCGAN-MNIST networks, batches and Adam steps on each rank:

  one-wrapper   what Lightning's DDPStrategy does: one DistributedDataParallel around a module holding G and D, with
                find_unused_parameters=True (each backward leaves the other network without gradients; DDP walks the
                loss's graph to find them and all-reduces every bucket, the idle network's zeros included)
  per-network   DDP(G) and DDP(D) with find_unused_parameters=False; the D step goes through DDP(D), the G step
                through DDP(G) and D's bare module (frozen), so each backward all-reduces one network's gradients

Printed: ms per batch (median over repeats) and the bytes each rank all-reduces per batch, counted by a DDP
communication hook. Usage: python benchmarks/ddp_sync.py [--steps 60] [--repeats 3] [--width 32]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_step import add_timing_arguments  # noqa: E402

from gan_lightning.models import DCGAN  # noqa: E402


def counting_hook(counter: dict[str, int]):
    def hook(state, bucket):  # unannotated: DDP checks the annotations, which postponed evaluation turns to strings
        counter["bytes"] += bucket.buffer().numel() * bucket.buffer().element_size()
        tensor = bucket.buffer().div_(dist.get_world_size())
        return dist.all_reduce(tensor, async_op=True).get_future().then(lambda fut: fut.value()[0])

    return hook


class Pair(nn.Module):
    """G and D in one module, its forward one of the two losses (DDP needs its forward called per backward)."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator

    def forward(self, turn: str, real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if turn == "d":
            with torch.no_grad():
                fake = self.generator(z)
            return d_loss(self.discriminator, real, fake)
        return g_loss(self.discriminator(self.generator(z)))


def d_loss(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    real_logits, fake_logits = discriminator(real), discriminator(fake)
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def frozen(module: nn.Module, flag: bool) -> None:
    for param in module.parameters():
        param.requires_grad_(not flag)


def worker(rank: int, world: int, init_file: str, mode: str, args: argparse.Namespace, queue) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = DCGAN({"width_g": args.width, "width_d": args.width, "latent_dim": 100}, (1, 28, 28))
    G, D = model.generator, model.discriminator
    counter = {"bytes": 0}
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    if mode == "one-wrapper":
        pair = DDP(Pair(G, D), find_unused_parameters=True)
        pair.register_comm_hook(None, counting_hook(counter))
    else:
        ddp_g, ddp_d = DDP(G), DDP(D)
        ddp_g.register_comm_hook(None, counting_hook(counter))
        ddp_d.register_comm_hook(None, counting_hook(counter))
    generator = torch.Generator().manual_seed(rank)
    real_batches = [torch.rand(64, 1, 28, 28, generator=generator) * 2 - 1 for _ in range(4)]
    start = None
    for step in range(args.steps + args.warmup):
        if step == args.warmup:
            dist.barrier()
            start, counter["bytes"] = time.perf_counter(), 0
        real, z = real_batches[step % 4], torch.randn(64, 100)
        frozen(G, True)
        loss = pair("d", real, z) if mode == "one-wrapper" else d_loss(ddp_d, real, G(z).detach())
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_d.step()
        frozen(G, False)
        frozen(D, True)
        loss = pair("g", real, z) if mode == "one-wrapper" else g_loss(D(ddp_g(z)))
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        frozen(D, False)
    dist.barrier()
    seconds = (time.perf_counter() - start) / args.steps
    weights = torch.cat([p.detach().flatten() for p in [*G.parameters(), *D.parameters()]])
    gathered = [torch.zeros_like(weights) for _ in range(world)]
    dist.all_gather(gathered, weights)
    if rank == 0:
        queue.put((seconds, counter["bytes"] / args.steps, all(torch.equal(gathered[0], w) for w in gathered)))
    dist.destroy_process_group()


def measure(mode: str, args: argparse.Namespace) -> tuple[float, float, bool]:
    context = mp.get_context("spawn")
    queue = context.SimpleQueue()
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(worker, args=(2, os.path.join(tmp, "init"), mode, args, queue), nprocs=2, join=True)
    return queue.get()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_timing_arguments(parser)
    parser.add_argument("--width", type=int, default=32)
    args = parser.parse_args()
    results = {mode: [] for mode in ("one-wrapper", "per-network")}
    for _ in range(args.repeats):
        for mode in results:  # alternate, so background load hits both alike
            results[mode].append(measure(mode, args))
    print(f"DCGAN-MNIST (width {args.width}, batch 64 per rank), 2 CPU processes (gloo), 1 thread each, "
          f"median of {args.repeats} x {args.steps} batches")
    for mode, runs in results.items():
        ms = 1000 * statistics.median(r[0] for r in runs)
        megabytes = runs[0][1] / 2**20
        print(f"  {mode:12s} {ms:7.1f} ms/batch  {megabytes:6.2f} MiB all-reduced per batch per rank  "
              f"ranks equal: {all(r[2] for r in runs)}")
    one = statistics.median(r[0] for r in results["one-wrapper"])
    per = statistics.median(r[0] for r in results["per-network"])
    print(f"  time one-wrapper / per-network = {one / per:.3f}; bytes = "
          f"{results['one-wrapper'][0][1] / results['per-network'][0][1]:.2f}x")


if __name__ == "__main__":
    main()
