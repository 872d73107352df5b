"""MNIST recipes, framework against plain PyTorch: MNIST-FID / IS / classes covered over seeds, and seconds per run.

Each framework run is a normal CLI run (``gan-lightning train EXPERIMENT``, through zoo_quality.run_one) on the
real MNIST test split in ``../shared/data`` for ``--steps`` batches. Its counterpart is a plain PyTorch loop
written out in this file: the same layer stack, the DCGAN paper's N(0, 0.02) weights with PyTorch's default
biases (the PyTorch DCGAN example's weights_init, which never touches a bias; the MLP nets keep PyTorch's
defaults), the same losses (non-saturating, hinge, Wasserstein with a gradient penalty or weight clipping),
spectral norm, n_critic rhythm, optimisers and EMA, and the same batches in the same order from the same seed
(each epoch a ``randperm`` seeded with ``seed * 100_003 + epoch``, as the framework's in-memory loader draws it).
Both sides are scored identically: 5,000 samples of the (EMA) generator in eval mode, latents seeded with 0, through
``gan_lightning.evaluation.evaluate`` with the shipped MNIST classifier against the 10,000 real digits. Both run
as their own process with ``--threads`` CPU threads, and the seconds are wall time of that process (start-up,
data, training and the final scoring).

Prints a markdown table (mean ± std over seeds, the framework/plain FID ratio, seconds per run) and writes it,
with every run's numbers, to ``<out>/recipe_quality.json``.

    python benchmarks/recipe_quality.py --experiments dcgan_mnist --seeds 0 1 2 --steps 1500 --jobs 1
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import statistics
import struct
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from cli_runs import report, run_all, summary, timed_process
from torch import Tensor, nn
from zoo_quality import SHARED_DATA
from zoo_quality import run_one as framework_run

from gan_lightning.models.latent import LatentGAN


@dataclass(frozen=True)
class PlainRecipe:
    """A recipe as the plain loop runs it, written out here (not read from experiments/*.yaml)."""

    arch: str = "dcgan"  # dcgan (the 28x28 DCGAN below) | mlp (Goodfellow et al.'s fully connected nets)
    latent_dim: int = 100
    width_g: int = 64  # dcgan
    width_d: int = 64
    d_norm: str = "batch"  # dcgan D's hidden layers: batch | layer (GroupNorm(1, C)) | none (with conv biases)
    hidden_g: tuple[int, ...] = (256, 512, 1024)  # mlp
    hidden_d: tuple[int, ...] = (1024, 512, 256)
    dropout_d: float = 0.0
    batch_size: int = 128
    loss: str = "non_saturating"  # non_saturating | hinge | wasserstein
    spectral_norm: bool = False  # every Conv/Linear weight of D divided by its spectral norm (one power iteration)
    gradient_penalty: float = 0.0  # lambda of WGAN-GP's penalty at random interpolates
    weight_clip: float | None = None  # D's weights clamped to [-c, c] after each D step (WGAN)
    n_critic: int = 1  # D steps per G step: G updates on batches n_critic, 2 n_critic, ...
    optimizer: str = "adam"  # adam | rmsprop
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    conditional: bool = False  # class label embedded (10-d) and concatenated to z and to the image as channels
    ema_decay: float | None = None  # EMA copy of G, scored instead of G


PLAIN_RECIPES = {
    "dcgan_mnist": PlainRecipe(lr_g=6e-4),
    "dcgan_mnist_paper": PlainRecipe(),
    "cgan_mnist": PlainRecipe(conditional=True, ema_decay=0.999),
    "sngan_mnist": PlainRecipe(batch_size=64, d_norm="none", loss="hinge", spectral_norm=True),
    "wgan_gp_mnist": PlainRecipe(batch_size=64, d_norm="layer", loss="wasserstein", gradient_penalty=10.0,
                                 n_critic=5, lr_g=1e-4, lr_d=1e-4, betas=(0.0, 0.9)),
    "wgan_mnist": PlainRecipe(batch_size=64, loss="wasserstein", weight_clip=0.01, n_critic=5, optimizer="rmsprop",
                              lr_g=5e-5, lr_d=5e-5),
    "gan_mnist": PlainRecipe(arch="mlp", batch_size=64, dropout_d=0.3, ema_decay=0.999),
}
EMBED_DIM, NUM_CLASSES = 10, 10

# --- data: the MNIST IDX files decoded by hand, batches drawn as the framework's loader draws them ----------


def read_mnist(root: Path, split: str = "test") -> tuple[Tensor, Tensor]:
    """uint8 (N, 1, 28, 28) images and long labels from torchvision's gzip files under root/MNIST/raw."""
    prefix = "t10k" if split == "test" else "train"
    arrays = []
    for name in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        with gzip.open(root / "MNIST" / "raw" / f"{prefix}-{name}.gz", "rb") as handle:
            data = handle.read()
        ndim = data[3]  # magic: 0, 0, dtype (0x08 = uint8), ndim; then ndim big-endian sizes
        shape = struct.unpack(f">{ndim}i", data[4 : 4 + 4 * ndim])
        arrays.append(torch.frombuffer(bytearray(data[4 + 4 * ndim :]), dtype=torch.uint8).view(shape))
    return arrays[0].unsqueeze(1), arrays[1].long()


def plain_batches(images: Tensor, labels: Tensor, batch_size: int, seed: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Endless shuffled full batches in [-1, 1]; epoch e's order is randperm(N) seeded with seed*100_003 + e."""
    per_epoch, epoch = images.shape[0] // batch_size, 0
    while True:
        order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        for index in range(per_epoch):
            rows = order[index * batch_size : (index + 1) * batch_size]
            yield images[rows].float().div_(127.5).sub_(1.0), labels[rows]
        epoch += 1


# --- networks: DCGAN for 28x28 (7x7 -> 14x14 -> 28x28), written out ------------------------------------------


class Generator(nn.Module):
    def __init__(self, recipe: PlainRecipe):
        super().__init__()
        w, extra = recipe.width_g, EMBED_DIM if recipe.conditional else 0
        self.embed = nn.Embedding(NUM_CLASSES, EMBED_DIM) if recipe.conditional else None
        self.net = nn.Sequential(
            nn.ConvTranspose2d(recipe.latent_dim + extra, 2 * w, 7, 1, 0, bias=False), nn.BatchNorm2d(2 * w),
            nn.ReLU(True),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True),
            nn.ConvTranspose2d(w, 1, 4, 2, 1), nn.Tanh())

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], 1)
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    def __init__(self, recipe: PlainRecipe):
        super().__init__()
        w, extra = recipe.width_d, EMBED_DIM if recipe.conditional else 0
        self.embed = nn.Embedding(NUM_CLASSES, EMBED_DIM) if recipe.conditional else None
        norm = {"batch": nn.BatchNorm2d(2 * w), "layer": nn.GroupNorm(1, 2 * w), "none": nn.Identity()}[recipe.d_norm]
        self.net = nn.Sequential(
            nn.Conv2d(1 + extra, w, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(w, 2 * w, 4, 2, 1, bias=recipe.d_norm == "none"), norm, nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * w, 1, 7, 1, 0))

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.embed is not None:
            x = torch.cat([x, self.embed(labels)[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)
        return self.net(x).flatten()


class MLPGenerator(nn.Module):
    def __init__(self, recipe: PlainRecipe):
        super().__init__()
        layers, width = [], recipe.latent_dim
        for size in recipe.hidden_g:
            layers += [nn.Linear(width, size), nn.ReLU(True)]
            width = size
        self.net = nn.Sequential(*layers, nn.Linear(width, 28 * 28), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, 1, 28, 28)


class MLPDiscriminator(nn.Module):
    def __init__(self, recipe: PlainRecipe):
        super().__init__()
        layers, width = [], 28 * 28
        for size in recipe.hidden_d:
            layers += [nn.Linear(width, size), nn.LeakyReLU(0.2, True), nn.Dropout(recipe.dropout_d)]
            width = size
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1)).squeeze(1)


def weights_init(m: nn.Module) -> None:
    """The PyTorch DCGAN tutorial's rule: conv weights N(0, 0.02), batchnorm N(1, 0.02) scale and zero shift;
    conv biases keep PyTorch's default."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


# --- the loop ------------------------------------------------------------------------------------------------

def build_plain(recipe: PlainRecipe, seed: int) -> tuple[nn.Module, nn.Module]:
    """G, D initialised from ``seed``: G built and initialised, then D, then D's spectral norms (their power
    iteration vectors are random), the order the framework draws in. The MLP nets keep PyTorch's default init."""
    torch.manual_seed(seed)
    if recipe.arch == "mlp":
        return MLPGenerator(recipe), MLPDiscriminator(recipe)
    G = Generator(recipe)
    G.apply(weights_init)
    D = Discriminator(recipe)
    D.apply(weights_init)
    if recipe.spectral_norm:
        for module in [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]:
            nn.utils.parametrizations.spectral_norm(module)
    return G, D


StepHook = Callable[[int, Tensor, Tensor, Tensor, float, float | None], None]


def d_loss_of(recipe: PlainRecipe, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    if recipe.loss == "hinge":
        return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()
    if recipe.loss == "wasserstein":
        return fake_scores.mean() - real_scores.mean()
    return F.binary_cross_entropy_with_logits(real_scores, torch.ones_like(real_scores)) + \
        F.binary_cross_entropy_with_logits(fake_scores, torch.zeros_like(fake_scores))


def g_loss_of(recipe: PlainRecipe, fake_scores: Tensor) -> Tensor:
    if recipe.loss in ("hinge", "wasserstein"):
        return -fake_scores.mean()
    return F.binary_cross_entropy_with_logits(fake_scores, torch.ones_like(fake_scores))


def penalty(D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """Gulrajani et al.: mean (||grad_x D(x_hat)|| - 1)^2 at x_hat = eps x + (1 - eps) G(z), one eps per sample."""
    eps = torch.rand(real.shape[0], 1, 1, 1)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grads,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    return ((grads.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def optimizer_for(recipe: PlainRecipe, params: Iterator[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    if recipe.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=recipe.betas)


def train_plain(recipe: PlainRecipe, images: Tensor, labels: Tensor, seed: int, steps: int,
                on_step: StepHook | None = None) -> nn.Module:
    """One D step per batch and a G step every ``n_critic`` batches on the same fakes; returns the generator to
    score (its EMA copy where the recipe has one). ``on_step(step, real, labels, z, d_loss, g_loss or None)`` sees
    each batch."""
    G, D = build_plain(recipe, seed)
    G_ema = copy.deepcopy(G).requires_grad_(False) if recipe.ema_decay is not None else None
    opt_d = optimizer_for(recipe, D.parameters(), recipe.lr_d)
    opt_g = optimizer_for(recipe, G.parameters(), recipe.lr_g)
    cond = recipe.conditional
    batches = plain_batches(images, labels, recipe.batch_size, seed)
    for step in range(steps):
        real, y = next(batches)
        y_in = (y,) if cond else ()
        generator_turn = (step + 1) % recipe.n_critic == 0
        z = torch.randn(real.shape[0], recipe.latent_dim)
        with torch.set_grad_enabled(generator_turn):
            fake = G(z, *y_in)
        d_loss = d_loss_of(recipe, D(real, *y_in), D(fake.detach(), *y_in))
        if recipe.gradient_penalty:
            d_loss = d_loss + recipe.gradient_penalty * penalty(D, real, fake.detach())
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        if recipe.weight_clip is not None:
            with torch.no_grad():
                for param in D.parameters():
                    param.clamp_(-recipe.weight_clip, recipe.weight_clip)
        g_loss = None
        if generator_turn:
            g_loss = g_loss_of(recipe, D(fake, *y_in))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            if G_ema is not None:
                with torch.no_grad():
                    for ema_p, p in zip(G_ema.parameters(), G.parameters(), strict=True):
                        ema_p.lerp_(p, 1.0 - recipe.ema_decay)
                    for ema_b, b in zip(G_ema.buffers(), G.buffers(), strict=True):
                        ema_b.copy_(b)  # batchnorm running statistics follow G
        if on_step is not None:
            on_step(step, real, y, z, d_loss.item(), None if g_loss is None else g_loss.item())
    return G_ema if G_ema is not None else G


class Scored:
    """What ``gan_lightning.evaluation.evaluate`` asks of a model, around a plain generator: the same seeded
    latents (and labels) and eval-mode sampling as the framework's ``LatentGAN``."""

    def __init__(self, generator: nn.Module, recipe: PlainRecipe):
        self.generator, self.recipe = generator, recipe
        self.sample_shape, self.device = (1, 28, 28), torch.device("cpu")

    def sample_latent(self, n: int, generator: torch.Generator) -> Tensor:
        return torch.randn(n, self.recipe.latent_dim, generator=generator)

    def sample_labels(self, n: int, generator: torch.Generator) -> Tensor | None:
        return torch.randint(0, NUM_CLASSES, (n,), generator=generator) if self.recipe.conditional else None

    @torch.no_grad()
    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        self.generator.eval()
        return self.generator(z, *(() if labels is None else (labels,)))

    # The framework's own evaluation-sample sequence, over the three methods above.
    eval_samples = LatentGAN.eval_samples


def plain_one(experiment: str, seed: int, steps: int, data_root: Path, result: Path) -> None:
    """Train and score one plain run (in its own process: see main); writes the scores to ``result``."""
    from omegaconf import OmegaConf

    from datamodules.mnist import MNISTConfig, MNISTDataModule
    from gan_lightning.config import MetricsCallbackConfig
    from gan_lightning.evaluation import evaluate

    recipe = PLAIN_RECIPES[experiment]
    images, labels = read_mnist(data_root)
    generator = train_plain(recipe, images, labels, seed, steps)
    # The datamodule only supplies the real digits for the (cached) real statistics, as in a framework run.
    real = MNISTDataModule(OmegaConf.structured(MNISTConfig(root=str(data_root), split="test", download=False)))
    settings = OmegaConf.structured(MetricsCallbackConfig(enabled=True, n_samples=5000, extractor="mnist"))
    scores = evaluate(Scored(generator, recipe), real, settings)
    result.write_text(json.dumps({k: scores[k] for k in ("fid", "is", "classes_covered")}))


def plain_run(experiment: str, seed: int, args: argparse.Namespace) -> dict:
    result = args.out / "plain" / experiment / f"seed{seed}.json"
    result.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, __file__, "--plain-one", experiment, "--seeds", str(seed), "--steps", str(args.steps),
               "--data-root", str(args.data_root), "--out", str(result)]
    seconds = timed_process(command, args.threads, f"plain {experiment} seed {seed}")
    return {"experiment": experiment, "seed": seed, "side": "plain", "seconds": seconds,
            **json.loads(result.read_text())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="dotlist applied to every framework run")
    parser.add_argument("--experiments", nargs="+", default=list(PLAIN_RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1500, help="training batches per run")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    parser.add_argument("--data-root", type=Path, default=SHARED_DATA)
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark_recipe_quality"))
    parser.add_argument("--plain-one", metavar="EXPERIMENT", help=argparse.SUPPRESS)  # one plain run (child)
    args = parser.parse_args()
    if args.plain_one:
        torch.set_num_threads(args.threads)
        plain_one(args.plain_one, args.seeds[0], args.steps, args.data_root, args.out)
        return 0
    missing = [e for e in args.experiments if e not in PLAIN_RECIPES]
    if missing:
        print(f"error: no plain loop for {', '.join(missing)}; available: {', '.join(PLAIN_RECIPES)}",
              file=sys.stderr)
        return 2
    if not (args.data_root / "MNIST" / "raw").is_dir():
        print(f"error: no MNIST/raw under {args.data_root}; pass --data-root (the folder holding MNIST/raw)",
              file=sys.stderr)
        return 2
    framework_args = argparse.Namespace(**{**vars(args), "out": args.out / "framework"})

    def run_pair(experiment: str, seed: int) -> list[dict]:  # one framework run, then its plain counterpart
        framework = {**framework_run(experiment, seed, framework_args), "side": "framework"}
        return [framework, plain_run(experiment, seed, args)]

    results = [run for pair in run_all(args.experiments, args.seeds, args.jobs, run_pair) for run in pair]

    def row(runs: list[dict]) -> list[str]:
        sides = {side: [r for r in runs if r["side"] == side] for side in ("framework", "plain")}
        fid = {side: statistics.fmean(r["fid"] for r in rs) for side, rs in sides.items()}
        seconds = {side: statistics.fmean(r["seconds"] for r in rs) for side, rs in sides.items()}
        cells = []
        for rs in sides.values():
            cells += [summary([r["fid"] for r in rs], 2), summary([r["is"] for r in rs], 2),
                      f"{summary([r['classes_covered'] for r in rs])} / 10"]
        return [*cells, f"{fid['framework'] / fid['plain']:.3f}", f"{seconds['framework']:.0f}",
                f"{seconds['plain']:.0f}", f"{seconds['framework'] / seconds['plain']:.3f}"]

    header = ["framework FID", "framework IS", "framework classes", "plain FID", "plain IS", "plain classes",
              "FID ratio", "framework s/run", "plain s/run", "time ratio"]
    report(results, args.experiments, header, row, args.out / "recipe_quality.json", steps=args.steps,
           seeds=args.seeds, threads=args.threads, overrides=args.overrides)
    return 0


if __name__ == "__main__":
    sys.exit(main())
