"""Single-image super-resolution: G maps a low-resolution image to one ``scale`` times larger (SRResNet, SRGAN,
ESRGAN); an image-to-image family beside CycleGAN and Pix2Pix.

A batch is {"lr": LR crops, "hr": the HR crops they were made from}, images in [-1, 1]; the fakes are G(lr).
``SuperResolutionModel`` is the PSNR-oriented stage: G trained by a pixel loss alone, no discriminator (the base runs
G's update only). ``SuperResolutionGAN`` adds the SRGAN discriminator and the perceptual game:

    D: model.loss on (D(hr), D(sr)), or its relativistic average form (ESRGAN, model.relativistic=true)
    G: perceptual_weight x content(VGG(sr), VGG(hr)) + adversarial_weight x G's GAN loss + pixel_weight x pixel

G is usually initialised from the pre-trained PSNR model (``model.init_from=CKPT``). The VGG19 of the content loss
needs torchvision's ImageNet weights (``model.vgg_weights=FILE``); ``model.vgg_random_weights=true`` uses the same
architecture with random weights instead (tests, offline recipes; said in the run's config) and
``model.perceptual_layer=null`` drops the VGG term (the paper's SRGAN-MSE).

Previews are rows LR (nearest-upsampled), bicubic, SR, HR of the first test images; ``upscale`` serves
``gan-lightning upscale`` and ``evaluate`` (PSNR/SSIM per test set next to bicubic).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn

from gan_lightning.errors import ConfigError, GanLightningError
from gan_lightning.losses import SRGAN_CONTENT_SCALE, content_loss, d_relativistic_average, g_relativistic_average
from gan_lightning.models.base import AdversarialConfig, Preview, eval_forward
from gan_lightning.models.translation import ImageTranslationConfig, ImageTranslationModel
from gan_lightning.nets.superres import GENERATORS, SCALES, RRDBNet, SRDiscriminator, SRResNet
from gan_lightning.nets.vgg import VGG19_LAYERS, VGGFeatures

CRITERIA = ("mse", "l1")


@dataclass
class SuperResConfig(AdversarialConfig):
    """The PSNR-oriented model: G and its pixel loss (no discriminator, so no D keys matter)."""

    name: str = "srresnet"
    generator: str = "srresnet"  # srresnet (Ledig et al.) | rrdb (ESRGAN's RRDBNet)
    width_g: int = 64  # channels of G's convolutions
    n_blocks: int = 16  # residual blocks (srresnet) or RRDBs (rrdb: 23 in ESRGAN)
    growth: int = 32  # rrdb: channels each dense-block conv adds
    residual_scale: float = 0.2  # rrdb: residual scaling inside and around the dense blocks
    pixel_criterion: str = "mse"  # mse | l1
    pixel_weight: float = 1.0  # weight of the pixel loss
    init_from: str | None = None  # a checkpoint whose generator initialises G (same architecture)
    lr_milestones: list[int] = field(default_factory=list)  # batches at which both lrs are multiplied by lr_gamma
    lr_gamma: float = 0.1  # factor applied to the learning rates at each of lr_milestones
    lr_g: float = 1e-4
    beta1: float = 0.9


class SuperResolutionModel(ImageTranslationModel):
    """G alone, trained by ``pixel_weight`` x pixel loss: SRResNet's MSE pre-training (``srresnet``)."""

    Config = SuperResConfig
    family = "super-resolution: G(low-resolution image) -> high-resolution image"
    techniques = ()

    def __init__(self, config: DictConfig | dict[str, Any] | None = None, sample_shape: Any = None,
                 experiment: dict[str, Any] | None = None, scale: int = 4, *, image_shape: Any = None,
                 **options: Any) -> None:
        """``sample_shape``: one HR training crop (C x H x W); ``scale``: the LR -> HR factor (the data's)."""
        super().__init__(config, sample_shape, experiment, image_shape=image_shape, facts={"scale": scale},
                         **options)
        if self.config.init_from is not None:
            self.load_generator(self.config.init_from)

    @classmethod
    def data_facts(cls, datamodule: Any) -> dict[str, Any]:
        return {**super().data_facts(datamodule), "scale": int(datamodule.scale)}

    @classmethod
    def from_hparams(cls, hparams: dict[str, Any]) -> SuperResolutionModel:
        # The checkpoint's own weights replace G's initialisation: the init file need not exist any more.
        config = {**hparams["config"], "init_from": None}
        return super().from_hparams({**hparams, "config": config})

    def init_data(self, scale: int) -> None:
        if scale not in SCALES:
            raise ConfigError(f"data.scale: {scale}; accepted: {', '.join(map(str, SCALES))}")
        self.scale = scale

    @classmethod
    def config_checks(cls, config: DictConfig) -> list[tuple[str, bool, str]]:
        return [*super().config_checks(config),
                ("generator", config.generator in GENERATORS, ", ".join(GENERATORS)),
                ("width_g", config.width_g >= 1, "an int >= 1"),
                ("n_blocks", config.n_blocks >= 0, "an int >= 0"),
                ("growth", config.growth >= 1, "an int >= 1"),
                ("pixel_criterion", config.pixel_criterion in CRITERIA, ", ".join(CRITERIA)),
                ("pixel_weight", config.pixel_weight >= 0, "a float >= 0"),
                ("lr_milestones", list(config.lr_milestones) == sorted(set(config.lr_milestones))
                 and all(m > 0 for m in config.lr_milestones), "increasing batch numbers > 0"),
                ("lr_gamma", 0 < config.lr_gamma <= 1, "a float in (0, 1]"),
                ("n_critic", config.n_critic == 1, "1 (one D step per G step)")]

    # --- networks ---------------------------------------------------------------------------------------
    def build_generator(self) -> nn.Module:
        channels, config = self.sample_shape[0], self.config
        if self.sample_shape[-1] % self.scale or self.sample_shape[-2] % self.scale:
            raise ValueError(f"the HR crop {self.sample_shape[-2]}x{self.sample_shape[-1]} is not a multiple of "
                             f"the scale {self.scale}")
        if config.generator == "rrdb":
            return RRDBNet(channels, self.scale, config.width_g, config.n_blocks, config.growth, config.residual_scale)
        return SRResNet(channels, self.scale, config.width_g, config.n_blocks)

    def build_discriminator(self) -> nn.Module | None:
        return None

    def generator_signature(self) -> str:
        """G's architecture in words, for messages about weights that do not fit it."""
        config = self.config
        extra = f", growth {config.growth}" if config.generator == "rrdb" else ""
        return (f"{config.generator} x{self.scale}, {self.sample_shape[0]} channels, width {config.width_g}, "
                f"{config.n_blocks} blocks{extra}")

    def load_generator(self, path: str | Path) -> None:
        """G's weights from the checkpoint at ``path`` (read with weights_only); one line if they do not fit."""
        from gan_lightning.checkpoints import load_checkpoint

        if not Path(path).is_file():
            raise ConfigError(f"model.init_from: checkpoint {path} does not exist; train the PSNR-oriented stage first "
                              "(e.g. gan-lightning train srresnet_digits) or set model.init_from=null for a random G")
        state = generator_state(load_checkpoint(path, "model.init_from"))
        problem = state_mismatch(self.generator.state_dict(), state)
        if problem:
            raise ConfigError(f"model.init_from: {path} holds a generator that does not fit this model's "
                              f"({self.generator_signature()}): {problem}")
        self.generator.load_state_dict(state)

    # --- the loop's hooks -------------------------------------------------------------------------------
    def prepare_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return batch  # {"lr": low-resolution crops, "hr": the crops they were made from}

    def make_fakes(self, batch: dict[str, Tensor]) -> Tensor:
        return self.generator(batch["lr"])

    def pixel_loss(self, sr: Tensor, hr: Tensor) -> Tensor:
        return content_loss(sr, hr, self.config.pixel_criterion, scale=1.0)

    def discriminator_loss(self, batch: dict[str, Tensor], fakes: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        # Never called: without a discriminator the loop makes no D update (AdversarialModule.training_step).
        raise RuntimeError("srresnet has no discriminator, hence no D loss")

    def generator_loss(self, batch: dict[str, Tensor], fakes: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        pixel = self.pixel_loss(fakes, batch["hr"])
        return self.config.pixel_weight * pixel, {"pixel": pixel}

    # --- the lr steps (MultiStepLR over batches) ----------------------------------------------------------
    def build_optimizers(self, max_steps: int, max_epochs: int | None = None) -> Any:
        built = super().build_optimizers(max_steps, max_epochs)
        milestones, gamma = list(self.config.lr_milestones), self.config.lr_gamma
        if not milestones:
            return built
        if self.config.lr_schedule != "constant":
            raise ConfigError("model.lr_milestones: steps of the lr are used with model.lr_schedule=constant only")

        def factor(batch: int) -> float:
            return gamma ** bisect.bisect_right(milestones, batch)

        return built, [torch.optim.lr_scheduler.LambdaLR(opt, factor) for opt in built]

    # --- what the model shows -----------------------------------------------------------------------------
    @torch.no_grad()
    def upscale(self, images: Tensor) -> Tensor:
        """LR images in [-1, 1] (N x C x h x w) -> G's HR images (N x C x scale*h x scale*w), eval mode."""
        return eval_forward(self.generator, images.to(self.device))

    def translate(self, images: Tensor, direction: str | None = None) -> Tensor:
        # `translate` resizes its inputs to the training crop, which would throw away what super-resolution is for.
        raise GanLightningError(f"{self.registry_name} upscales images at their own size: use {self.translate_usage}")

    @property
    def translate_usage(self) -> str:
        return "gan-lightning upscale CHECKPOINT --input DIR_OR_IMAGE --out DIR"

    def preview_pairs(self, count: int, datamodule: Any) -> tuple[Tensor, Tensor]:
        """The first ``count`` (LR, HR) pairs of the first test set, centre-cropped to the training crop so they
        stack."""
        test_sets = datamodule.test_sets()
        if not test_sets:
            raise GanLightningError("super-resolution previews show test images: the data has no test set (add one "
                                    "under data.test_sets, or use data.source digits or photos)")
        pairs = next(iter(test_sets.values()))[:count]
        return centre_crop_pairs(pairs, self.sample_shape[-1], self.scale)

    def preview(self, n: int, nrow: int, datamodule: Any = None) -> Preview:
        """Rows LR (nearest-upsampled), bicubic, SR, HR for the first ``nrow`` test images."""
        from gan_lightning.superres_eval import bicubic_upscale

        lr, hr = self.preview_pairs(nrow, datamodule)
        rows = [F.interpolate(lr, scale_factor=self.scale, mode="nearest"),
                bicubic_upscale(lr, self.scale).clamp(-1, 1), self.upscale(lr).cpu().clamp(-1, 1), hr]
        return Preview(torch.cat([row.to(self.device) for row in rows]), len(lr), ("LR", "bicubic", "SR", "HR"))

    def eval_samples(self, n: int, batch_size: int, seed: int, datamodule: Any = None,
                     shard: tuple[int, int] = (0, 1)) -> Iterator[Tensor]:
        """For FID/KID: G's upscaling of each whole test image, cut into the non-overlapping training-crop tiles the
        datamodule's ``real_samples`` cuts the HR test images into (row by row, image by image), the first ``n``."""
        tiles = []
        for pairs in datamodule.test_sets().values():
            for lr, _ in pairs:
                tiles += crop_tiles(self.upscale(lr)[0].clamp(-1, 1), self.sample_shape[-1])
                if len(tiles) >= n:
                    break
            if len(tiles) >= n:
                break
        rank, world = shard
        yield from torch.stack(tiles[:n]).split(batch_size)[rank::world]

    def evaluate_test_sets(self, datamodule: Any, lpips: nn.Module | None = None) -> dict[str, Any]:
        """PSNR/SSIM (Y and RGB) of G and of bicubic upscaling on every test set of the data, whole images; LPIPS too
        with an ``lpips`` network (``gan_lightning.metrics.perceptual.lpips_vgg``)."""
        from gan_lightning.superres_eval import evaluate_superres

        return evaluate_superres(self.upscale, datamodule.test_sets(), self.scale, lpips)


def crop_tiles(image: Tensor, size: int) -> list[Tensor]:
    """The non-overlapping ``size`` x ``size`` tiles of a C x H x W image, row by row (an incomplete edge dropped)."""
    return [image[:, top : top + size, left : left + size] for top in range(0, image.shape[-2] - size + 1, size)
            for left in range(0, image.shape[-1] - size + 1, size)]


def centre_crop_pairs(pairs: list[tuple[Tensor, Tensor]], size: int, scale: int) -> tuple[Tensor, Tensor]:
    """(LR, HR) batches of the pairs' centre crops (pairs of 1 x C x h x w and 1 x C x H x W): HR ``size`` x ``size``
    (or the smallest image's side, rounded down to a multiple of ``scale``), LR the aligned ``size / scale`` crop."""
    size = min([size, *(min(hr.shape[-2:]) for _, hr in pairs)]) // scale * scale
    small = size // scale
    lows, highs = [], []
    for lr, hr in pairs:
        top, left = (lr.shape[-2] - small) // 2, (lr.shape[-1] - small) // 2
        lows.append(lr[..., top : top + small, left : left + small])
        highs.append(hr[..., top * scale : (top + small) * scale, left * scale : (left + small) * scale])
    return torch.cat(lows), torch.cat(highs)


def generator_state(checkpoint: dict[str, Any]) -> dict[str, Tensor]:
    """The ``generator.*`` weights of a gan-lightning checkpoint, without the prefix."""
    prefix = "generator."
    return {key[len(prefix):]: value for key, value in checkpoint["state_dict"].items() if key.startswith(prefix)}


def state_mismatch(expected: dict[str, Tensor], given: dict[str, Tensor]) -> str | None:
    """What keeps ``given`` from loading into a module whose state dict is ``expected``: the first missing or
    unexpected key or shape difference, in words; None if it fits."""
    missing = [key for key in expected if key not in given]
    if missing:
        return f"it lacks {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
    unexpected = [key for key in given if key not in expected]
    if unexpected:
        return f"it has {unexpected[0]}, which this generator does not"
    for key, tensor in expected.items():
        if given[key].shape != tensor.shape:
            return f"{key} has shape {tuple(given[key].shape)}, this generator's is {tuple(tensor.shape)}"
    return None


@dataclass
class SuperResGANConfig(SuperResConfig, ImageTranslationConfig):
    """The perceptual stage: SRGAN's recipe by default; ESRGAN's in ``models/esrgan.py``."""

    name: str = "srgan"
    width_d: int = 64  # channels of D's first layer (doubling every other layer)
    dense_d: int = 1024  # units of D's hidden dense layer
    relativistic: bool = False  # relativistic average D and G losses (ESRGAN); needs model.loss=non_saturating
    perceptual_layer: str | None = "relu5_4"  # VGG19 layer of the content loss; null = none (SRGAN-MSE)
    perceptual_criterion: str = "mse"  # mse | l1
    perceptual_weight: float = SRGAN_CONTENT_SCALE  # 1/12.75: SRGAN's rescaling of the VGG loss
    vgg_weights: str | None = None  # torchvision's vgg19-dcbb9e9d.pth
    vgg_random_weights: bool = False  # the VGG19 architecture with random weights (tests, offline recipes)
    adversarial_weight: float = 1e-3  # weight of G's adversarial loss beside the content loss
    pixel_weight: float = 0.0  # optional pixel term beside the content loss
    lr_d: float = 1e-4


class SuperResolutionGAN(SuperResolutionModel):
    """SRResNet/RRDB G against the SRGAN discriminator, with the perceptual (VGG) content loss."""

    Config = SuperResGANConfig
    techniques = ImageTranslationModel.techniques

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Built before training (check_data) or at the first G loss: loading the model only to upscale needs no VGG.
        # Set past nn.Module's bookkeeping so that it stays out of the state dict, the optimizers and checkpoints.
        object.__setattr__(self, "_vgg", None)

    @classmethod
    def config_checks(cls, config: DictConfig) -> list[tuple[str, bool, str]]:
        layer = config.perceptual_layer
        return [*super().config_checks(config),
                ("width_d", config.width_d >= 1, "an int >= 1"),
                ("dense_d", config.dense_d >= 1, "an int >= 1"),
                ("perceptual_layer", layer is None or layer in VGG19_LAYERS,
                 "null or a VGG19 layer name (relu5_4, conv5_4, relu2_2, ...)"),
                ("perceptual_criterion", config.perceptual_criterion in CRITERIA, ", ".join(CRITERIA)),
                ("perceptual_weight", config.perceptual_weight >= 0, "a float >= 0"),
                ("adversarial_weight", config.adversarial_weight >= 0, "a float >= 0"),
                ("relativistic", not config.relativistic or config.loss == "non_saturating",
                 "true only with model.loss=non_saturating (the relativistic form of its logistic loss)")]

    @classmethod
    def check_config(cls, config: DictConfig) -> None:
        super().check_config(config)
        if config.perceptual_layer is None:
            return
        if config.vgg_weights is None and not config.vgg_random_weights:
            raise ConfigError(f"model.vgg_weights: the content loss on VGG19 {config.perceptual_layer} needs "
                              "torchvision's ImageNet vgg19 file (vgg19-dcbb9e9d.pth): give model.vgg_weights=FILE "
                              "(or model.perceptual_layer=null for a pixel content loss, or "
                              "model.vgg_random_weights=true for random VGG weights)")
        if config.vgg_weights is not None and config.vgg_random_weights:
            raise ConfigError("model.vgg_random_weights: true together with model.vgg_weights; choose one")

    def build_discriminator(self) -> nn.Module:
        channels, height, width = self.sample_shape
        if height != width:
            raise ValueError(f"the SRGAN discriminator judges square crops, got {height}x{width}")
        return SRDiscriminator(channels, width, self.config.width_d, self.config.dense_d)

    def check_data(self, datamodule: Any) -> None:
        super().check_data(datamodule)
        self.perceptual_network()  # a missing or wrong VGG file fails here, before training

    def perceptual_network(self) -> VGGFeatures | None:
        """The frozen VGG19 of the content loss (not part of the model's state dict), or None."""
        if self.config.perceptual_layer is None:
            return None
        if self._vgg is None:
            object.__setattr__(self, "_vgg", VGGFeatures(self.config.perceptual_layer, self.config.vgg_weights))
        return self._vgg.to(self.device)

    # --- the players' losses ----------------------------------------------------------------------------
    def discriminator_loss(self, batch: dict[str, Tensor], fakes: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        real_scores, fake_scores = self.discriminator(batch["hr"]), self.discriminator(fakes)
        d_loss = d_relativistic_average if self.config.relativistic else self.d_loss_fn
        return d_loss(real_scores, fake_scores), {"d_real": self.score_summary(real_scores),
                                                 "d_fake": self.score_summary(fake_scores)}

    def generator_loss(self, batch: dict[str, Tensor], fakes: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        config, hr = self.config, batch["hr"]
        fake_scores = self.discriminator(fakes)
        if config.relativistic:  # the real images' scores enter G's loss too (D is not updated by it)
            adversarial = g_relativistic_average(self.discriminator(hr).detach(), fake_scores)
        else:
            adversarial = self.g_loss_fn(fake_scores)
        loss, logs = config.adversarial_weight * adversarial, {"g_adv": adversarial}
        vgg = self.perceptual_network()
        if vgg is not None:
            with torch.no_grad():
                target = vgg(hr)
            perceptual = content_loss(vgg(fakes), target, config.perceptual_criterion, scale=1.0)
            loss, logs["content"] = loss + config.perceptual_weight * perceptual, perceptual
        if config.pixel_weight > 0:
            pixel = self.pixel_loss(fakes, hr)
            loss, logs["pixel"] = loss + config.pixel_weight * pixel, pixel
        return loss, logs
