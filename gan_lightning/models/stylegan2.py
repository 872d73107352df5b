"""StyleGAN2 (Karras et al. 2020) as a latent GAN: ``stylegan2`` (unconditional) and ``cstylegan2`` (class labels
into the mapping network and a projection discriminator).

The recipe of stylegan2-ada-pytorch's paper configuration, on ``gan_lightning.nets.stylegan2``: the non-saturating
logistic loss; Adam(0.0025, betas 0/0.99) for both players; lazy R1 on D every 16 batches (``techniques.r1``) and
lazy path length regularisation on G every 4 (``techniques.path_length``), each folded into that batch's loss with
its interval as a factor, and each optimizer's lr and betas adjusted for its interval as the reference does
(lr * k/(k+1), beta ** (k/(k+1)), k the interval); style mixing with probability 0.9; w_avg (EMA 0.995) for the
truncation trick; an EMA copy of G for samples and metrics (``ema_decay``).

The resolution is the data's (a power of two >= 8: resize 28x28 digits with ``data.image_size: 32``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from gan_lightning.errors import GanLightningError
from gan_lightning.models.base import AdversarialConfig, eval_forward
from gan_lightning.models.latent import LatentGAN
from gan_lightning.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator, channels_at
from gan_lightning.registry import register_model
from gan_lightning.techniques import EMA, Augmentation, LatentPrior, Packing
from gan_lightning.techniques.augmentation import AugmentationConfig
from gan_lightning.techniques.ema import EMAConfig
from gan_lightning.techniques.latent_prior import LatentPriorConfig
from gan_lightning.techniques.packing import PackingConfig
from gan_lightning.techniques.path_length import PathLength, PathLengthConfig
from gan_lightning.techniques.r1 import R1, R1Config

NOISE_MODES = ("const", "random")  # noise maps: fixed per layer (reproducible), or fresh every call


# Bases in reverse: a dataclass lists the fields of its last base first, so the game's keys lead.
@dataclass
class StyleGAN2Config(AugmentationConfig, EMAConfig, PathLengthConfig, R1Config, PackingConfig, LatentPriorConfig,
                      AdversarialConfig):
    name: str = "stylegan2"
    loss: str = "non_saturating"  # the reference's logistic loss: softplus(-D(x)) + softplus(D(G(z))), -> G
    lr_g: float = 0.0025
    lr_d: float = 0.0025
    beta1: float = 0.0
    beta2: float = 0.99
    latent_dim: int = 512  # z
    w_dim: int = 512  # dimension of w (the mapping network's output)
    channel_base: int = 32768  # channels at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 512  # most channels at any resolution
    mapping_layers: int = 8  # layers of the mapping network z -> w
    mapping_lr_multiplier: float = 0.01  # the mapping network's learning rate relative to lr_g (equalised lr)
    mbstd_group: int = 4  # D's minibatch standard deviation group (the reference's mbstd; paper256: 8)
    mbstd_channels: int = 1  # channels the minibatch std appends (the reference's mbstd_num_channels, 1)
    style_mixing: float = 0.9  # probability that a training forward mixes two zs' ws
    r1_gamma: float | None = None  # null: 0.0002 * resolution^2 / 32 (the reference heuristic at batch 32)
    pl_weight: float = 2.0
    # The reference averages G over ema_kimg = 10 thousand images (batch 32 in the paper configuration):
    # decay per batch = 0.5 ** (batch / (ema_kimg * 1000)) = 0.5 ** (32 / 10000) = 0.99778. Other batch sizes: same
    # formula.
    ema_decay: float | None = 0.99778


@register_model("stylegan2")
class StyleGAN2(LatentGAN):
    Config = StyleGAN2Config
    # Packing before augmentation (each packed sample gets its own transform); EMA after the updates: it averages the
    # stepped G.
    techniques = (LatentPrior, Packing, R1, PathLength, EMA, Augmentation)

    @classmethod
    def config_checks(cls, config: DictConfig) -> list[tuple[str, bool, str]]:
        return [*super().config_checks(config),
                ("w_dim", config.w_dim >= 1, "an int >= 1"),
                ("channel_base", config.channel_base >= 1, "an int >= 1"),
                ("channel_max", config.channel_max >= 1, "an int >= 1"),
                ("mapping_layers", config.mapping_layers >= 1, "an int >= 1"),
                ("mapping_lr_multiplier", config.mapping_lr_multiplier > 0, "a float > 0"),
                ("mbstd_group", config.mbstd_group >= 1, "an int >= 1"),
                ("mbstd_channels", config.mbstd_channels >= 1
                 and channels_at(4, config.channel_base, config.channel_max) % config.mbstd_channels == 0,
                 "an int >= 1 that divides D's channels at 4x4 (min(channel_base // 4, channel_max))"),
                ("style_mixing", 0.0 <= config.style_mixing <= 1.0, "a float in [0, 1]")]

    def build_generator(self) -> nn.Module:
        c = self.config
        channels, size = self.sample_shape[0], self.sample_shape[-1]
        return StyleGAN2Generator(c.latent_dim, c.w_dim, size, channels, c.channel_base, c.channel_max,
                                  c.mapping_layers, self.num_classes, c.style_mixing, c.mapping_lr_multiplier)

    def build_discriminator(self) -> nn.Module:
        c = self.config
        return StyleGAN2Discriminator(self.d_input_shape[0], self.d_input_shape[-1], c.channel_base, c.channel_max,
                                      self.num_classes, c.mbstd_group, c.mbstd_channels)

    def regularization_intervals(self) -> tuple[int | None, int | None]:
        """(D's, G's) lazy regularisation interval, None where that regulariser is off."""
        r1, pl = self.technique(R1), self.technique(PathLength)
        return (self.config.r1_interval if r1 is not None else None,
                self.config.pl_interval if pl is not None else None)

    def build_optimizers(self, max_steps: int, max_epochs: int | None = None) -> Any:
        """The base's optimizers with the reference's lazy-regularisation adjustment: a player regularised every k
        batches gets lr * k/(k+1) and betas ** (k/(k+1)), as if its k main steps and one regulariser step were
        k + 1 steps of the same optimizer."""
        built = super().build_optimizers(max_steps, max_epochs)
        optimizers = built[0] if isinstance(built, tuple) else built
        for optimizer, interval in zip(optimizers, self.regularization_intervals(), strict=True):  # D first, then G
            if interval is None:
                continue
            ratio = interval / (interval + 1)
            for group in optimizer.param_groups:
                group["lr"] *= ratio
                if "initial_lr" in group:  # a scheduler scales initial_lr: adjust it too
                    group["initial_lr"] *= ratio
                if "betas" in group:
                    group["betas"] = tuple(beta**ratio for beta in group["betas"])
        if isinstance(built, tuple):  # LR schedulers scale the base lrs they read at construction
            for scheduler in built[1]:
                scheduler.base_lrs = [group["initial_lr"] for group in scheduler.optimizer.param_groups]
        return built

    # --- sampling and editing: truncation, noise, style mixing, W interpolation ---------------------------------
    @property
    def num_ws(self) -> int:
        """Per-layer ws the synthesis network reads: two per resolution, 4 px to the output's."""
        return self.generator.num_ws

    def check_sampling_options(self, truncation: float = 1.0, truncation_cutoff: int | None = None,
                               noise: str | None = None) -> None:
        if truncation_cutoff is not None and not 1 <= truncation_cutoff <= self.num_ws:
            raise GanLightningError(f"truncation cutoff must be in [1, {self.num_ws}] (this generator reads "
                                    f"{self.num_ws} per-layer ws), got {truncation_cutoff}")
        if noise not in (None, *NOISE_MODES):
            raise GanLightningError(f"noise {noise!r}; accepted: {', '.join(NOISE_MODES)}")

    @torch.no_grad()
    def sampling_ws(self, z: Tensor, labels: Tensor | None = None, truncation: float = 1.0,
                    truncation_cutoff: int | None = None, use_ema: bool = True) -> Tensor:
        """Per-layer ws (N x num_ws x w_dim) of latents z: w = mapping(z) on every layer, truncated toward w_avg
        (w_avg + psi * (w - w_avg)) on the first ``truncation_cutoff`` layers (all when None)."""
        self.check_sampling_options(truncation, truncation_cutoff)
        net = self.sampling_generator if use_ema else self.generator
        return net.sampling_ws(z.to(self.device), *self.label_args(labels), truncation_psi=truncation,
                               truncation_cutoff=truncation_cutoff)

    @torch.no_grad()
    def synthesize(self, ws: Tensor, noise: str | None = None, use_ema: bool = True) -> Tensor:
        """Images of per-layer ws. ``noise``: "random" (fresh noise maps each call, the default), "const" (each
        layer's fixed noise buffer: the same ws always give the same image)."""
        self.check_sampling_options(noise=noise)
        net = self.sampling_generator if use_ema else self.generator
        return eval_forward(net.synthesis, ws.to(self.device), noise or "random")

    def generate(self, z: Tensor, labels: Tensor | None = None, use_ema: bool = True, *, truncation: float = 1.0,
                 truncation_cutoff: int | None = None, noise: str | None = None) -> Tensor:
        """Samples of latents z: ``synthesize(sampling_ws(z, labels, truncation, truncation_cutoff), noise)``."""
        return self.synthesize(self.sampling_ws(z, labels, truncation, truncation_cutoff, use_ema), noise, use_ema)

    def interpolate(self, starts: Tensor, ends: Tensor, steps: int, labels: Tensor | None = None,
                    truncation: float = 1.0, truncation_cutoff: int | None = None, noise: str | None = None) -> Tensor:
        """Row r walks linearly in W from w(starts[r]) to w(ends[r]) (latents z, truncated as asked) in ``steps``
        samples: W is the space the mapping network made (more) linear, and the one path length is measured in."""
        if steps < 2:
            raise GanLightningError(f"interpolation needs >= 2 steps per row, got {steps}")
        row_labels = None if labels is None else labels[::steps]  # one per row: the row's first sample's
        w_start = self.sampling_ws(starts, row_labels, truncation, truncation_cutoff)
        w_end = self.sampling_ws(ends, row_labels, truncation, truncation_cutoff)
        t = torch.linspace(0.0, 1.0, steps, device=w_start.device).reshape(1, steps, 1, 1)
        ws = w_start.unsqueeze(1).lerp(w_end.unsqueeze(1), t).flatten(0, 1)  # R * steps x num_ws x w_dim
        return self.synthesize(ws, noise)

    def style_bands(self) -> dict[str, list[int]]:
        """The per-layer ws of the coarse, middle and fine styles. ws 2k and 2k + 1 belong to resolution 4 * 2^k (the
        paper's layer count); bands as the paper's: coarse 4-8 px, middle 16-32 px, fine 64 px and up. A generator
        below 64 px splits its resolutions into three consecutive bands instead, the lower ones larger where they do
        not divide evenly (32 px: coarse 4-8, middle 16, fine 32), so every band shows something."""
        levels = self.num_ws // 2
        if levels >= 5:
            counts = (2, 2, levels - 4)
        else:
            counts = tuple(levels // 3 + (1 if band < levels % 3 else 0) for band in range(3))
        bands, first = {}, 0
        for name, count in zip(("coarse", "middle", "fine"), counts, strict=True):
            bands[name] = list(range(2 * first, 2 * (first + count)))
            first += count
        return bands

    def mixing_layers(self, spec: str) -> list[int]:
        """The ws indices a style-mixing spec names: comma-separated bands (coarse, middle, fine), ranges A-B
        (inclusive) and single indices, e.g. "coarse", "middle,fine", "0-3"."""
        bands, chosen = self.style_bands(), set()
        for part in (item.strip() for item in str(spec).split(",")):
            if part in bands:
                if not bands[part]:
                    raise GanLightningError(f"mix layers: this generator has no {part} layers ({self._bands_text()})")
                chosen.update(bands[part])
                continue
            try:
                low, _, high = part.partition("-")
                low_index, high_index = int(low), int(high or low)
            except ValueError:
                raise GanLightningError(f"mix layers {spec!r}: expected coarse, middle, fine or a range A-B of ws "
                                        f"indices ({self._bands_text()})") from None
            if not 0 <= low_index <= high_index < self.num_ws:
                raise GanLightningError(f"mix layers {part!r}: ws indices run 0-{self.num_ws - 1} on this generator "
                                        "(A-B with A <= B)")
            chosen.update(range(low_index, high_index + 1))
        return sorted(chosen)

    def _bands_text(self) -> str:
        return ", ".join(f"{name} {layers[0]}-{layers[-1]}" if layers else f"{name} none"
                         for name, layers in self.style_bands().items())

    @torch.no_grad()
    def style_mix(self, row_z: Tensor, col_z: Tensor, layers: str | list[int] = "coarse",
                  row_labels: Tensor | None = None, col_labels: Tensor | None = None, truncation: float = 1.0,
                  truncation_cutoff: int | None = None, noise: str | None = "const") -> Tensor:
        """The style-mixing figure of Karras et al. as (R + 1) x (C + 1) images, row-major (a grid of C + 1
        columns): the column sources (latents col_z) along the top, the row sources (row_z) down the left, a grey
        corner, and cell (r, c) the column source's ws with the row source's w on ``layers`` (a ``mixing_layers``
        spec or ws indices). Const noise by default, so a source looks the same in its row/column and its cells."""
        layers = self.mixing_layers(layers) if isinstance(layers, str) else sorted(layers)
        row_ws = self.sampling_ws(row_z, row_labels, truncation, truncation_cutoff)
        col_ws = self.sampling_ws(col_z, col_labels, truncation, truncation_cutoff)
        rows, cols = row_ws.shape[0], col_ws.shape[0]
        mixed = col_ws.unsqueeze(0).repeat(rows, 1, 1, 1)  # R x C x num_ws x w_dim
        mixed[:, :, layers] = row_ws[:, layers].unsqueeze(1)
        images = self.synthesize(torch.cat([col_ws, row_ws, mixed.flatten(0, 1)]), noise)
        top, left, cells = images.split([cols, rows, rows * cols])
        corner = torch.zeros_like(images[:1])  # mid-grey in data space
        grid = [corner, top]
        for row in range(rows):
            grid += [left[row : row + 1], cells[row * cols : (row + 1) * cols]]
        return torch.cat(grid)

    def projection_space(self, w_plus: bool = False) -> Any:
        """What ``gan-lightning project`` optimises: w (one for every layer) or, ``w_plus``, one w per layer, plus
        the noise maps, of the EMA generator."""
        from gan_lightning.projection import StyleSpace

        return StyleSpace(self, w_plus)

    def eval_samples(self, n: int, batch_size: int, seed: int, datamodule: Any = None,
                     shard: tuple[int, int] = (0, 1)) -> Iterator[Tensor]:
        """As LatentGAN's, clamped to [-1, 1]: G's output is linear, and the reference's metrics also see its
        images clamped (quantised to uint8)."""
        for images in super().eval_samples(n, batch_size, seed, datamodule, shard):
            yield images.clamp(-1.0, 1.0)


@register_model("cstylegan2")
class CStyleGAN2(StyleGAN2):
    """Class-conditional StyleGAN2: a label embedding concatenated to z in the mapping network, and a projection
    discriminator. Grids are class by row."""

    conditional = True

    def fixed_labels(self, n: int, nrow: int | None = None) -> Tensor | None:
        return super().fixed_labels(n, 8 if nrow is None else nrow)
