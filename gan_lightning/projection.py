"""Projecting real images into a generator's latent space by optimisation (``gan-lightning project``).

The schedule of stylegan2-ada-pytorch's projector (Karras et al. 2020, appendix of "Analyzing and Improving..."):

- start every image at the latent average (StyleGAN2: the tracked ``w_avg``; a plain G: the mean of its prior) and
  add Gaussian noise of std ``0.05 * latent_std`` that ramps down quadratically to 0 over the first 75% of the steps
  (``latent_std``: the root mean squared distance of 10,000 prior draws from that average), so early steps explore;
- Adam(betas 0.9/0.999), learning rate 0.1 ramped up over the first 5% of the steps (linear) and down over the last
  25% (half a cosine);
- StyleGAN2's per-layer noise maps are optimised too (const noise mode), regularised by 1e5 times the sum over maps
  and scales (the map, then 2x average-pooled down to 8 px) of the squared autocorrelation at a one-pixel shift along
  each axis, and renormalised to zero mean and unit variance after every step, so they cannot carry the image;
- loss per image: the perceptual distance (``gan_lightning.metrics.perceptual``: VGG16 LPIPS-style when its weights
  are given, else pixel MSE plus the MNIST-net distance for digits) plus the noise regularisation.

A batch of images is projected at once, each with its own latent and noise maps: the loss is a sum of per-image
terms and Adam is elementwise, so the result equals projecting them one by one (up to the random draws).
Conditional models are not supported (they would need each image's class).
"""

from __future__ import annotations

import copy
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_lightning.errors import GanLightningError


@dataclass
class ProjectionSettings:
    steps: int = 1000
    learning_rate: float = 0.1
    lr_rampup: float = 0.05  # fraction of the steps
    lr_rampdown: float = 0.25
    initial_noise_factor: float = 0.05  # latent noise std at step 0, in units of latent_std
    noise_ramp: float = 0.75  # fraction of the steps over which the latent noise falls to 0
    noise_regularize: float = 1e5
    average_samples: int = 10000  # prior draws for latent_std (and a plain G's average)
    pixel_weight: float = 1.0  # pixel MSE beside a perceptual distance other than VGG (and alone without any)
    snapshots: int = 8  # columns of the progress grid (evenly spaced steps, the last one included)


def learning_rate(step: int, settings: ProjectionSettings) -> float:
    """The reference's ramp: cosine down over the last ``lr_rampdown``, linear up over the first ``lr_rampup``."""
    t = step / settings.steps
    ramp = min(1.0, (1.0 - t) / settings.lr_rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return settings.learning_rate * ramp * min(1.0, t / settings.lr_rampup)


def latent_noise_scale(step: int, latent_std: float, settings: ProjectionSettings) -> float:
    t = step / settings.steps
    return latent_std * settings.initial_noise_factor * max(0.0, 1.0 - t / settings.noise_ramp) ** 2


def noise_regularization(maps: list[Tensor]) -> Tensor:
    """(N,) per image: for every noise map (N x 1 x H x W) and each of its 2x average-pooled versions down to 8 px,
    the squared mean of the map times itself shifted one pixel (with wrap-around) along each axis."""
    total = 0
    for noise in maps:
        while True:
            for dim in (2, 3):
                total = total + (noise * torch.roll(noise, shifts=1, dims=dim)).mean(dim=(1, 2, 3)).square()
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, kernel_size=2)
    return total


@torch.no_grad()
def normalize_noise(maps: list[Tensor]) -> None:
    for noise in maps:
        noise -= noise.mean(dim=(1, 2, 3), keepdim=True)
        noise *= noise.square().mean(dim=(1, 2, 3), keepdim=True).rsqrt()


class LatentSpace:
    """Z of a generator without a mapping network: G(z), starting at the mean of the latent prior."""

    name = "z"

    def __init__(self, model: Any):
        self.model = model
        self.net = copy.deepcopy(model.sampling_generator).eval().requires_grad_(False)  # batchnorm: running stats

    def prior_draws(self, n: int, generator: torch.Generator) -> Tensor:
        return self.model.sample_latent(n, generator)

    def average(self, draws: Tensor) -> Tensor:
        return draws.mean(dim=0)

    def start(self, average: Tensor, n: int) -> Tensor:
        return average.expand(n, -1).clone()

    def noise_maps(self, n: int, generator: torch.Generator) -> list[Tensor]:
        return []

    def render(self, latents: Tensor) -> Tensor:
        return self.net(latents)

    def layer_latents(self, latents: Tensor) -> Tensor:
        return latents


class StyleSpace(LatentSpace):
    """W (one w for every layer) or W+ (one per layer) of a StyleGAN2 generator, with its noise maps: a private copy
    of the sampling generator whose const noise buffers become per-image, optimisable N x 1 x H x W maps."""

    def __init__(self, model: Any, w_plus: bool = False):
        if model.conditional:
            raise GanLightningError(f"project: model {model.registry_name} is conditional; projecting needs each "
                                    "image's class, which this command does not take")
        self.model, self.w_plus = model, w_plus
        self.name = "w+" if w_plus else "w"
        self.net = copy.deepcopy(model.sampling_generator).eval().requires_grad_(False)
        self.noise_layers = [m for m in self.net.synthesis.modules() if hasattr(m, "noise_const")]

    def prior_draws(self, n: int, generator: torch.Generator) -> Tensor:
        return self.net.mapping(self.model.sample_latent(n, generator))

    def average(self, draws: Tensor) -> Tensor:
        return self.net.w_avg.clone()  # the tracked average, the truncation trick's centre

    def start(self, average: Tensor, n: int) -> Tensor:
        return average.reshape(1, 1, -1).repeat(n, self.net.num_ws if self.w_plus else 1, 1)

    def noise_maps(self, n: int, generator: torch.Generator) -> list[Tensor]:
        maps = []
        for layer in self.noise_layers:
            noise = torch.randn((n, 1, *layer.noise_const.shape[-2:]), generator=generator)
            layer.noise_const = noise.to(layer.noise_const.device).requires_grad_(True)  # broadcast over channels
            maps.append(layer.noise_const)
        return maps

    def render(self, latents: Tensor) -> Tensor:
        return self.net.synthesis(self.layer_latents(latents), noise_mode="const")

    def layer_latents(self, latents: Tensor) -> Tensor:
        return latents.expand(-1, self.net.num_ws, -1)


@dataclass
class Projection:
    latents: Tensor  # N x latent_dim (z), N x 1 x w_dim (w) or N x num_ws x w_dim (w+)
    layer_latents: Tensor  # what the generator reads: z, or N x num_ws x w_dim
    noise_maps: list[Tensor]
    images: Tensor  # the final projections, data space
    snapshots: list[Tensor]  # images at evenly spaced steps, the last one the final
    distances: Tensor  # (N,) final perceptual (+ pixel) distance to the targets


def pixel_distance(images: Tensor, targets: Tensor) -> Tensor:
    return (images - targets).square().flatten(1).mean(dim=1)


def project(space: LatentSpace, targets: Tensor, distance: nn.Module | None, settings: ProjectionSettings,
            seed: int = 0, pixel: bool = True, progress: Any = None) -> Projection:
    """Optimise one latent (and noise maps) per target image (N x C x H x W, data space). ``distance``: a
    ``PerceptualDistance`` or None; ``pixel``: add the pixel MSE (times ``settings.pixel_weight``)."""
    generator = torch.Generator().manual_seed(seed)
    device = targets.device
    with torch.no_grad():
        draws = space.prior_draws(settings.average_samples, generator).to(device)
        average = space.average(draws)
        latent_std = float((draws - average).square().sum() / settings.average_samples) ** 0.5
        target_features = distance.features(targets) if distance is not None else None
    latents = space.start(average, targets.shape[0]).requires_grad_(True)
    maps = space.noise_maps(targets.shape[0], generator)
    optimizer = torch.optim.Adam([latents, *maps], betas=(0.9, 0.999), lr=settings.learning_rate)
    snapshot_steps = {round(k * (settings.steps - 1) / max(1, settings.snapshots - 1))
                      for k in range(settings.snapshots)}

    def loss_terms(images: Tensor) -> Tensor:
        terms = torch.zeros(images.shape[0], device=device)
        if distance is not None:
            terms = terms + distance.from_features(distance.features(images), target_features)
        if pixel or distance is None:
            terms = terms + settings.pixel_weight * pixel_distance(images, targets)
        return terms

    snapshots = []
    for step in range(settings.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, settings)
        scale = latent_noise_scale(step, latent_std, settings)
        noise = torch.randn(latents.shape, generator=generator).to(device) * scale
        images = space.render(latents + noise)
        loss = (loss_terms(images) + settings.noise_regularize * noise_regularization(maps)).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        normalize_noise(maps)
        if step in snapshot_steps:
            with torch.no_grad():
                snapshots.append(space.render(latents).detach())
        if progress is not None:
            progress(step, float(loss))
    with torch.no_grad():
        images = space.render(latents)
        final = loss_terms(images)
    return Projection(latents.detach(), space.layer_latents(latents.detach()).clone(), [m.detach() for m in maps],
                      images.detach(), snapshots, final)


def project_images(checkpoint: str | Path, input_path: str | Path, out: str | Path, settings: ProjectionSettings,
                   w_plus: bool = False, vgg_weights: str | Path | None = None, seed: int = 0,
                   batch_size: int = 16, perceptual: bool = True,
                   lpips_weights: str | Path | None = None) -> tuple[int, str, Path]:
    """``gan-lightning project``: every image of ``input_path`` (a file or a folder) projected; writes into ``out``
    NAME_projected.png per image, latents.pt and progress.png. Returns (images, space name, out). ``perceptual``
    False: pixel MSE alone (projections then owe nothing to a network they may later be scored with)."""
    from tqdm import tqdm

    from datamodules.image_folder import IMAGE_SUFFIXES, Preprocess, decode_image, image_files
    from gan_lightning.data_io import uint8_to_unit_range
    from gan_lightning.files import atomic_torch_save
    from gan_lightning.loading import load_model
    from gan_lightning.metrics.perceptual import build_distance
    from gan_lightning.models.latent import LatentGAN
    from gan_lightning.outputs import check_not_read, check_output_folder, save_image_file
    from gan_lightning.rundir import check_writable

    for option, value in (("--steps", settings.steps), ("--batch-size", batch_size)):
        if value < 1:
            raise GanLightningError(f"{option} must be >= 1, got {value}")
    input_path, out = Path(input_path), Path(out)
    if input_path.is_dir():
        files = image_files(input_path)
        check_output_folder(out, "--out", input_path, "--input", [])
    elif input_path.is_file():
        if input_path.suffix.lower() not in IMAGE_SUFFIXES:
            raise GanLightningError(f"--input {input_path}: not an image ({'/'.join(IMAGE_SUFFIXES)})")
        files = [input_path]
    else:
        raise GanLightningError(f"--input {input_path} does not exist")
    stems = [path.stem for path in files]
    if len(set(stems)) != len(stems):
        raise GanLightningError(f"--input {input_path}: two images share a name stem (e.g. "
                                f"{next(s for s in stems if stems.count(s) > 1)!r}); their outputs would collide")
    outputs = [out / f"{stem}_projected.png" for stem in stems] + [out / "latents.pt", out / "progress.png"]
    reads = {checkpoint: "the checkpoint", **{path: "an input image" for path in files},
             **({vgg_weights: "the VGG16 weights"} if vgg_weights else {}),
             **({lpips_weights: "the LPIPS weights"} if lpips_weights else {})}
    check_not_read(outputs, "--out", reads)
    check_writable(out, "--out")
    model = load_model(checkpoint)
    if not isinstance(model, LatentGAN):
        raise GanLightningError(f"{checkpoint}: model {model.registry_name} has no latent space to project into")
    channels, size = model.sample_shape[0], model.sample_shape[-1]
    if not perceptual and (vgg_weights is not None or lpips_weights is not None):
        raise GanLightningError(f"--pixel-only and {'--vgg-weights' if vgg_weights else '--lpips-weights'}: give one "
                                "of them")
    # a bad file is one line naming it; learned LPIPS with lpips_weights, as stylegan2-ada's projector
    distance = build_distance(vgg_weights, channels, lpips_weights) if perceptual else None
    if distance is None and perceptual:
        print(f"note: no perceptual network for {channels}-channel images offline: pixel MSE alone (give "
              "--vgg-weights for LPIPS/VGG16)", file=sys.stderr)
    # Each file as the datamodules decode it: centre square crop, bicubic resize to the model's size, its channels.
    preprocess = Preprocess(size, channels, crop="center")
    targets = uint8_to_unit_range(torch.stack([torch.tensor(decode_image(path, preprocess)) for path in files]))
    results = []
    for start in tqdm(range(0, len(files), batch_size), desc=f"projecting into {('w+' if w_plus else 'w')} "
                      f"({settings.steps} steps)", unit="batch", file=sys.stderr, disable=None):
        space = model.projection_space(w_plus)
        results.append(project(space, targets[start : start + batch_size].to(model.device), distance, settings,
                               seed=seed + start, pixel=vgg_weights is None))
    images = torch.cat([r.images for r in results]).cpu()
    for stem, image in zip(stems, images, strict=True):
        save_image_file(to_unit(image), out / f"{stem}_projected.png")
    atomic_torch_save({
        "space": space.name, "names": [path.name for path in files],
        "latents": torch.cat([r.latents for r in results]).cpu(),
        "layer_latents": torch.cat([r.layer_latents for r in results]).cpu(),
        "noise_maps": [torch.cat(maps).cpu() for maps in zip(*(r.noise_maps for r in results), strict=True)],
        "distances": torch.cat([r.distances for r in results]).cpu(), "steps": settings.steps,
        "perceptual": distance.name if distance is not None else "pixel"}, out / "latents.pt")
    save_image_file(progress_grid(targets, results), out / "progress.png")
    return len(files), space.name, out


def to_unit(images: Tensor) -> Tensor:
    return images.float().add(1.0).div(2.0).clamp(0.0, 1.0)


PROGRESS_ROWS = 16  # images shown in progress.png


def progress_grid(targets: Tensor, results: list[Projection]) -> Tensor:
    """One row per image (the first PROGRESS_ROWS): the target, then the projection at evenly spaced steps."""
    from torchvision.utils import make_grid

    snapshots = [torch.cat(columns) for columns in zip(*(r.snapshots for r in results), strict=True)]
    rows = min(PROGRESS_ROWS, targets.shape[0])
    columns = [targets[:rows], *(snap[:rows].cpu() for snap in snapshots)]
    cells = torch.stack(columns, dim=1).flatten(0, 1)  # row-major: image by image
    return make_grid(to_unit(cells), nrow=len(columns), padding=1)
