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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--root", type=Path, default=None, help="where the fake folder goes (default: a temp dir)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the torchvision baseline")
    args = p.parse_args()

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
