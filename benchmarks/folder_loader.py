"""The cached CelebA loader against torchvision's CelebA dataset + DataLoader, on the same folder.

    python benchmarks/folder_loader.py [--n 3000] [--root DIR] [--image-size 64] [--batch-size 128]

Writes a fake CelebA folder in torchvision's layout (``--n`` 178 x 218 JPEGs of noisy flat colours, the list files;
``datamodules.celeba.write_fake_celeba``) into a temporary directory (or ``--root``), then measures:

1. the one-off cache build (decode, centre crop 178, bicubic resize, write the uint8 ``.npy`` and its digest) with
   the default decode workers, and the start-up of a later run (cache hit + fingerprint from the stored digest);
2. images/s of the datamodule's train loader (batch 128, 64 px, the uint8 -> [-1, 1] float transform included)
   over one epoch after the first;
3. images/s of ``torchvision.datasets.CelebA`` (CenterCrop(178), Resize(64), ToTensor, Normalize) under
   ``DataLoader(batch_size=128, num_workers=2, shuffle=True)``, also over the epoch after the first (persistent
   workers, so worker start-up is not counted against it). torchvision's md5 check of the real list files is
   skipped: the fake files cannot match it.

Both serve ``split="all"``, so they read the same images. Prints a markdown table with the ratio.

``--memory N`` measures instead what serving a CelebA-sized cache costs in memory: it writes a synthetic cache of N
(200,000: CelebA's size) uint8 images at ``--image-size`` straight into a ``.npy`` file (no JPEGs: their decoding is
measured above), opens it as the datamodules do (``np.load(mmap_mode="c")``), serves one shuffled epoch of batches
through the same stateful loader and uint8 -> [-1, 1] transform, and reports the process's anonymous memory
(``RssAnon``: what a second copy of the data would show up in) before, at its peak during, and after the epoch.

    python benchmarks/folder_loader.py --memory 200000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch


def write_torchvision_extras(folder: Path, names: list[str]) -> None:
    """The three list files torchvision's CelebA reads besides ours (identities, boxes, landmarks)."""
    (folder / "identity_CelebA.txt").write_text("".join(f"{name} {i % 100}\n" for i, name in enumerate(names)))
    (folder / "list_bbox_celeba.txt").write_text(f"{len(names)}\nimage_id x_1 y_1 width height\n" + "".join(
        f"{name} 10 10 150 150\n" for name in names))
    columns = " ".join(f"{part}_{axis}" for part in ("lefteye", "righteye", "nose", "leftmouth", "rightmouth")
                       for axis in "xy")
    (folder / "list_landmarks_align_celeba.txt").write_text(f"{len(names)}\n{columns}\n" + "".join(
        f"{name} 69 109 106 113 77 142 73 152 108 154\n" for name in names))


def epoch_rate(loader, warm_epochs: int = 1) -> float:
    """Images per second over one epoch, after ``warm_epochs`` untimed ones."""
    for _ in range(warm_epochs):
        for _ in loader:
            pass
    count, start = 0, time.perf_counter()
    for batch in loader:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        count += images.shape[0]
    return count / (time.perf_counter() - start)


def anonymous_mib() -> float:
    """This process's anonymous resident memory (heap, tensors; not file pages of memory maps), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no RssAnon in /proc/self/status (Linux only)")


def memory_check(n: int, size: int, batch_size: int, root: Path | None) -> None:
    import numpy as np

    from datamodules.base import InMemoryBatches
    from gan_lightning.data_io import uint8_to_unit_range

    scratch = tempfile.TemporaryDirectory(prefix="folder_memory_")
    path = (root or Path(scratch.name)) / "synthetic_cache.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, 3, size, size))
    generator = np.random.default_rng(0)
    for first in range(0, n, 4096):
        rows = array[first : first + 4096]
        rows[:] = generator.integers(0, 256, rows.shape, dtype=np.uint8)
    array.flush()
    del array
    written = time.perf_counter() - start
    before = anonymous_mib()
    images = torch.from_numpy(np.load(path, mmap_mode="c"))
    batches = InMemoryBatches((images,), batch_size, seed=0, transform=uint8_to_unit_range)
    peak, count, start = before, 0, time.perf_counter()
    for (batch,) in batches:
        count += batch.shape[0]
        if count % (batch_size * 64) == 0:
            peak = max(peak, anonymous_mib())
    seconds = time.perf_counter() - start
    after = anonymous_mib()
    gib = path.stat().st_size / 2**30
    print(f"synthetic cache: {n:,} images 3x{size}x{size} = {gib:.2f} GiB on disk (written in {written:.0f} s)")
    print("| anonymous memory (RssAnon) | MiB |")
    print("|---|---|")
    print(f"| before opening the cache | {before:,.0f} |")
    print(f"| peak during one epoch of {count:,} images (batch {batch_size}, shuffled) | {peak:,.0f} |")
    print(f"| after the epoch | {after:,.0f} |")
    print(f"\nepoch: {count / seconds:,.0f} images/s; growth {peak - before:,.0f} MiB against {gib * 1024:,.0f} MiB "
          "of data")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--root", type=Path, default=None, help="where the fake folder goes (default: a temp dir)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the torchvision baseline")
    p.add_argument("--memory", type=int, default=None, metavar="N", help="measure memory over N cached images")
    args = p.parse_args()
    if args.memory:
        memory_check(args.memory, args.image_size, args.batch_size, args.root)
        return

    from omegaconf import OmegaConf
    from torch.utils.data import DataLoader
    from torchvision import transforms
    from torchvision.datasets import CelebA

    from datamodules.celeba import CelebADataModule, write_fake_celeba
    from datamodules.image_folder import default_workers

    scratch = tempfile.TemporaryDirectory(prefix="folder_loader_")
    root = args.root or Path(scratch.name) / "data"
    start = time.perf_counter()
    write_fake_celeba(root, n=args.n, noise=20.0)
    folder = root / "celeba"
    write_torchvision_extras(folder, sorted(p.name for p in (folder / "img_align_celeba").iterdir()))
    print(f"wrote {args.n} fake CelebA JPEGs into {folder} in {time.perf_counter() - start:.1f} s")

    config = OmegaConf.merge(OmegaConf.structured(CelebADataModule.Config), {
        "root": str(root), "split": "all", "image_size": args.image_size, "batch_size": args.batch_size,
        "cache_dir": str(Path(scratch.name) / "cache")})
    start = time.perf_counter()
    dm = CelebADataModule(config)
    dm.setup()
    _ = dm.fingerprint
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    again = CelebADataModule(config)
    again.setup()
    _ = again.fingerprint
    hit_s = time.perf_counter() - start
    cached = epoch_rate(again.train_dataloader())

    class FakeChecksCelebA(CelebA):
        def _check_integrity(self) -> bool:  # the real files' md5 sums cannot match the fake ones
            return True

    transform = transforms.Compose([transforms.CenterCrop(178), transforms.Resize(args.image_size),
                                    transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])
    dataset = FakeChecksCelebA(str(root), split="all", target_type="attr", transform=transform)
    loader = DataLoader(dataset, batch_size=args.batch_size, num_workers=args.workers, shuffle=True,
                        persistent_workers=args.workers > 0)
    baseline = epoch_rate(loader)

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"\n{args.n} images 178x218 -> {args.image_size} px, batch {args.batch_size}, {cpus} CPU core(s), "
          f"torch threads {torch.get_num_threads()}, decode workers {default_workers()}\n")
    print("| loader | images/s (epoch after the first) | one-off cost |")
    print("|---|---|---|")
    print(f"| torchvision CelebA + DataLoader({args.workers} workers) | {baseline:,.0f} | - |")
    print(f"| gan-lightning celeba (cached uint8 memory map) | {cached:,.0f} | cache build {build_s:.1f} s; "
          f"later start-up {hit_s:.2f} s |")
    print(f"\nratio cached / torchvision: {cached / baseline:.1f}x (target >= 10x)")


if __name__ == "__main__":
    main()
