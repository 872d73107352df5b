"""Framework overhead and data-path speed, measured side by side in one run.

1. The framework's DCGAN-MNIST training step (Lightning Trainer, manual optimization, logging, the
   counted-step machinery) against a plain PyTorch loop doing identical work: the same networks and
   initial weights, the same batches, one G forward per batch, the D step on detached fakes, the G step,
   Adam(2e-4, 0.5, 0.999). Target: ratio <= 1.05.
2. MNIST batches per second from the in-memory datamodule against torchvision's per-item PIL path
   (MNIST dataset + ToTensor + Normalize + DataLoader). Target: >= 10x.

Usage: python benchmarks/train_step.py [--steps 60] [--repeats 3] [--mnist-root ../shared/data]
Both paths alternate within each repeat and the median is reported, so background load hits both alike.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import logging
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from datamodules.mnist import MNISTConfig, MNISTDataModule
from gan_lightning.models import DCGAN


class StepTimer(L.Callback):
    """Wall time of training batches [warmup, end), excluding Trainer start-up and teardown."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.end = warmup, None, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        self.end = time.perf_counter()


def framework_seconds_per_step(model: L.LightningModule, datamodule: L.LightningDataModule, steps: int,
                               warmup: int) -> float:
    """Seconds per training batch through a plain Trainer, after ``warmup`` batches."""
    timer = StepTimer(warmup)
    trainer = L.Trainer(max_steps=steps + warmup, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer])
    trainer.fit(model, datamodule=datamodule)
    return (timer.end - timer.start) / steps


def endless(loader: Iterable[Any]) -> Iterator[Any]:
    """The loader's batches, epoch after epoch."""
    while True:
        yield from loader


def timed_batches(loader: Iterable[Any], steps: int, warmup: int, clock: dict[str, float]) -> Iterator[tuple[int, Any]]:
    """(step, batch) for ``warmup`` + ``steps`` batches of the loader, epoch after epoch; ``clock["start"]`` is set
    just before the first timed batch is drawn."""
    batches = endless(loader)
    for step in range(steps + warmup):
        if step == warmup:
            clock["start"] = time.perf_counter()
        yield step, next(batches)


def plain_seconds_per_step(model: DCGAN, datamodule: MNISTDataModule, steps: int, warmup: int) -> float:
    G, D = model.generator, model.discriminator
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    clock: dict[str, float] = {}
    for _, (real, _) in timed_batches(datamodule.train_dataloader(), steps, warmup, clock):
        fake = G(torch.randn(real.shape[0], model.config.latent_dim))
        real_logits, fake_logits = D(real), D(fake.detach())
        d_loss = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) + \
            F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_logits = D(fake)
        g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        # the framework logs these scalars every step; the plain loop reads them too, as any loop would
        _ = (d_loss.item(), g_loss.item())
    return (time.perf_counter() - clock["start"]) / steps


def data_path_batches_per_second(mnist_root: Path, batch_size: int, n_batches: int) -> tuple[float, float]:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    dm = MNISTDataModule(OmegaConf.structured(MNISTConfig(root=str(mnist_root), split="test", download=False,
                                                          batch_size=batch_size)))
    dm.setup()
    start = time.perf_counter()
    count = 0
    while count < n_batches:
        for _ in dm.train_dataloader():
            count += 1
            if count == n_batches:
                break
    in_memory = n_batches / (time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as tmp:  # torchvision wants the un-gzipped files
        raw = Path(tmp) / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for name in ("images-idx3-ubyte", "labels-idx1-ubyte"):
            source = mnist_root / "MNIST" / "raw" / f"t10k-{name}.gz"
            with gzip.open(source) as src, open(raw / f"t10k-{name}", "wb") as dst:
                shutil.copyfileobj(src, dst)
            # torchvision checks that all four files exist even for train=False; the train ones go unread.
            shutil.copy(raw / f"t10k-{name}", raw / f"train-{name}")
        dataset = datasets.MNIST(tmp, train=False, download=False, transform=transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]))
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=0)
        start = time.perf_counter()
        count = 0
        while count < n_batches:
            for _ in loader:
                count += 1
                if count == n_batches:
                    break
        per_item = n_batches / (time.perf_counter() - start)
    return in_memory, per_item


@dataclass
class PairedTimes:
    """Seconds per step of two loops timed in alternation; ``ratios`` are first/second within each pair, so a slow
    spell of a shared machine (which moves single runs by +-10 % on 2-core CPUs) cancels within the pair."""

    first: list[float]
    second: list[float]

    @property
    def ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.first, self.second, strict=True)]

    def ratio_summary(self) -> str:
        """The median per-pair ratio and, from 4 pairs on, its interquartile range."""
        ratios = self.ratios
        if len(ratios) < 4:
            return f"{statistics.median(ratios):6.3f}"
        q1, _, q3 = statistics.quantiles(ratios, n=4)
        return f"{statistics.median(ratios):6.3f} [{q1:.3f}-{q3:.3f}]"


def paired_times(first: Callable[[], float], second: Callable[[], float], repeats: int) -> PairedTimes:
    """``repeats`` pairs of runs, first then second in each: both sides of a pair meet the same machine load (and
    the same process settings, such as the NVML-based CUDA check that importing Lightning turns on)."""
    times = PairedTimes([], [])
    for _ in range(repeats):
        times.first.append(first())
        times.second.append(second())
    return times


def add_timing_arguments(parser: argparse.ArgumentParser, steps: int = 60, warmup: int = 5, repeats: int = 3) -> None:
    """--steps (timed), --warmup (untimed, first) and --repeats (alternating, median reported)."""
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--warmup", type=int, default=warmup)
    parser.add_argument("--repeats", type=int, default=repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_timing_arguments(parser)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--mnist-root", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    torch.manual_seed(0)
    datamodule = MNISTDataModule(OmegaConf.structured(MNISTConfig(root=str(args.mnist_root), split="test",
                                                                  download=False, batch_size=args.batch_size)))
    datamodule.setup()
    template = DCGAN({"width_g": args.width, "width_d": args.width, "latent_dim": 100}, (1, 28, 28), 10)
    times = paired_times(
        lambda: framework_seconds_per_step(copy.deepcopy(template), datamodule, args.steps, args.warmup),
        lambda: plain_seconds_per_step(copy.deepcopy(template), datamodule, args.steps, args.warmup), args.repeats)
    f, p = statistics.median(times.first), statistics.median(times.second)
    print(f"DCGAN-MNIST step (width {args.width}, batch {args.batch_size}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats}x{args.steps} steps)")
    print(f"  framework  {1000 * f:8.2f} ms/step")
    print(f"  plain loop {1000 * p:8.2f} ms/step")
    print(f"  ratio framework/plain = {f / p:.3f}  (target <= 1.05)")
    in_memory, per_item = data_path_batches_per_second(args.mnist_root, 128, 150)
    print("MNIST batches/s (batch 128)")
    print(f"  in-memory datamodule   {in_memory:10.1f}")
    print(f"  torchvision PIL path   {per_item:10.1f}")
    print(f"  ratio in-memory/PIL = {in_memory / per_item:.1f}x  (target >= 10x)")


if __name__ == "__main__":
    main()
