"""Isola et al. 2017, pix2pix: paired image-to-image translation with a conditional GAN.

G: x -> y is a U-Net (no z: dropout is its noise), D a 70x70 PatchGAN that judges (input, output) pairs, the
channel-concatenation of x with y or with G(x). A batch is {"input": x, "target": y}. D minimises half the vanilla
GAN loss (the paper divides D's objective by 2 to slow it down relative to G), G the non-saturating GAN loss +
lambda_l1 * mean |G(x) - y| (lambda 100). The paper's recipe: batch norm, batch 1, Adam(2e-4, 0.5, 0.999),
N(0, 0.02) init.

Translating (grids, ``translate``, evaluation): ``model.inference`` says how G runs. ``paper`` (the default) as the
paper does at test time: dropout on and batch norm on the statistics of the translated image itself, one image at a
time with one fixed dropout draw (``model.sample_seed``), so a translation depends on its input only and repeats;
running statistics are not touched. ``eval``: plain eval mode, no dropout and batch norm on running statistics (the
reference code's --eval).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from gan_lightning.errors import GanLightningError
from gan_lightning.losses import cycle_consistency
from gan_lightning.models.base import Preview, eval_forward, seeded_randomness
from gan_lightning.models.translation import ImageTranslationConfig, ImageTranslationModel
from gan_lightning.nets.translation import PatchDiscriminator, UnetGenerator, check_patch_input, translation_init_
from gan_lightning.registry import register_model
from gan_lightning.techniques import Augmentation, HistoricalAveraging, LabelSmoothing, SpectralNorm, WeightClipping
from gan_lightning.techniques.augmentation import AugmentationConfig
from gan_lightning.techniques.label_smoothing import LabelSmoothingConfig

INFERENCE_MODES = ("paper", "eval")


@dataclass
class Pix2PixConfig(AugmentationConfig, LabelSmoothingConfig, ImageTranslationConfig):
    name: str = "pix2pix"
    loss: str = "non_saturating"  # the paper's vanilla GAN loss on logits (G's side non-saturating)
    width_g: int = 64  # channels of the U-Net's first layer
    width_d: int = 64  # channels of the PatchGAN's first layer
    d_layers: int = 3  # stride-2 layers of the PatchGAN: 3 = 70x70 patches
    norm: str = "batch"  # batch (the paper) | instance | none
    lambda_l1: float = 100.0  # weight of the L1 loss to the target (lambda)
    inference: str = "paper"  # paper: dropout on, each image's own batch statistics | eval: plain eval mode


@contextmanager
def paper_inference(net: nn.Module) -> Iterator[None]:
    """``net`` in training mode (dropout on, batch norm on the current batch's statistics) without updating its
    batch norm running statistics; its modes restored after."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    was_training = net.training
    net.train()
    for m in norms:
        m.track_running_stats = False  # training mode without running statistics: uses and updates none
    try:
        yield
    finally:
        for m in norms:
            m.track_running_stats = True
        net.train(was_training)


@register_model("pix2pix")
class Pix2Pix(ImageTranslationModel):
    Config = Pix2PixConfig
    techniques = (LabelSmoothing, SpectralNorm, WeightClipping, HistoricalAveraging, Augmentation)

    def __init__(self, config: DictConfig | dict[str, Any] | None = None, sample_shape: Any = None,
                 experiment: dict[str, Any] | None = None, direction: str = "AtoB", *, image_shape: Any = None,
                 **options: Any) -> None:
        """``direction``: which half of the data's pairs G learned to make (the datamodule's ``direction``)."""
        super().__init__(config, sample_shape, experiment, image_shape=image_shape, facts={"direction": direction},
                         **options)

    @classmethod
    def data_facts(cls, datamodule: Any) -> dict[str, Any]:
        return {**super().data_facts(datamodule), "direction": datamodule.direction}

    @classmethod
    def from_hparams(cls, hparams: dict[str, Any]) -> Pix2Pix:
        if "direction" not in hparams:  # older checkpoints: the direction stood only in the stored experiment
            data = (hparams.get("experiment") or {}).get("data", {})
            hparams = {**hparams, "direction": data.get("direction", "AtoB")}
        return super().from_hparams(hparams)

    def init_data(self, direction: str) -> None:
        self.direction = direction  # translate() refuses the other one

    @classmethod
    def config_checks(cls, config: DictConfig) -> list[tuple[str, bool, str]]:
        return [*super().config_checks(config),
                ("norm", config.norm in ("batch", "instance", "none"), "batch, instance, none"),
                ("lambda_l1", config.lambda_l1 >= 0, "a float >= 0"),
                ("inference", config.inference in INFERENCE_MODES, ", ".join(INFERENCE_MODES)),
                ("d_layers", config.d_layers >= 1, "an int >= 1"),
                ("width_g", config.width_g >= 1, "an int >= 1"),
                ("width_d", config.width_d >= 1, "an int >= 1")]

    # --- networks ---------------------------------------------------------------------------------------
    def build_generator(self) -> nn.Module:
        channels, size = self.sample_shape[0], self.sample_shape[-1]
        net = UnetGenerator(channels, channels, size, self.config.width_g, self.config.norm)
        translation_init_(net)
        return net

    def build_discriminator(self) -> nn.Module:
        check_patch_input(self.sample_shape[-1], self.config.d_layers)
        net = PatchDiscriminator(2 * self.sample_shape[0], self.config.width_d, self.config.d_layers,
                                 self.config.norm)
        translation_init_(net)
        return net

    # --- the loop's hooks: D judges (input, output) pairs --------------------------------------------------------
    def prepare_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return batch  # {"input": x, "target": y}

    def make_fakes(self, batch: dict[str, Tensor]) -> Tensor:
        return self.generator(batch["input"])

    def discriminate(self, x: Tensor, condition: Tensor) -> Tensor:
        pair = torch.cat([condition, x], dim=1)
        augmentation = self.technique(Augmentation)
        if augmentation is not None:  # one transform for both halves: D must still see whether they correspond
            pair = augmentation.augment(pair, self.sample_shape[0])
        return self.discriminator(pair)

    def discriminator_loss(self, batch: dict[str, Tensor], fakes: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        real_scores = self.discriminate(batch["target"], batch["input"])
        fake_scores = self.discriminate(fakes, batch["input"])
        self.real_scores = (real_scores.detach(), real_scores.shape[0])
        # The paper: "we divide the objective by 2 while optimizing D".
        half = 0.5 * self.d_loss_fn(real_scores, fake_scores)
        return half, {"d_real": self.score_summary(real_scores), "d_fake": self.score_summary(fake_scores)}

    def generator_loss(self, batch: dict[str, Tensor], fakes: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        adversarial = self.g_loss_fn(self.discriminate(fakes, batch["input"]))
        l1 = cycle_consistency(fakes, batch["target"])  # the same formula, mean |G(x) - y|
        return adversarial + self.config.lambda_l1 * l1, {"g_adv": adversarial, "l1": l1}

    # --- what the model shows -----------------------------------------------------------------------------
    @torch.no_grad()
    def translate(self, images: Tensor, direction: str | None = None) -> Tensor:
        """Inputs in [-1, 1] -> G's outputs, as ``model.inference`` says (see the module docstring)."""
        if direction is not None and direction != self.direction:
            raise GanLightningError(f"this pix2pix model learned {self.direction} (data.direction={self.direction}); "
                                    f"it cannot translate {direction}: use --direction {self.direction}")
        images = images.to(self.device)
        if self.config.inference == "eval":
            return eval_forward(self.generator, images)
        outputs = []
        with paper_inference(self.generator):
            for image in images.split(1):  # batch 1, the paper's test protocol: no image sees another's statistics
                with seeded_randomness(self.config.sample_seed, self.device):  # the same dropout draw for every image
                    outputs.append(self.generator(image))
        return torch.cat(outputs) if outputs else images.new_empty(images.shape)

    def preview(self, n: int, nrow: int, datamodule: Any = None) -> Preview:
        """Rows input, output, target for the first ``nrow`` pairs of the evaluation split."""
        inputs, targets = datamodule.eval_pairs(nrow)
        rows = [inputs.to(self.device), self.translate(inputs), targets.to(self.device)]
        return Preview(torch.cat(rows), len(inputs), ("input", "output", "target"))

    def eval_samples(self, n: int, batch_size: int, seed: int, datamodule: Any = None,
                     shard: tuple[int, int] = (0, 1)) -> Iterator[Tensor]:
        """G over the first ``n`` evaluation inputs (all of them if fewer): scored against their targets
        (``real_samples``). With ``shard`` = (rank, world size), only batches rank, rank + world, ..."""
        rank, world = shard
        for batch in datamodule.eval_pairs(n)[0].split(batch_size)[rank::world]:
            yield self.translate(batch)

    def eval_sample_count(self, n: int, datamodule: Any = None) -> int:
        return len(datamodule.eval_pairs(n)[0])

    @property
    def translate_usage(self) -> str:
        return f"gan-lightning translate CHECKPOINT --input DIR --direction {self.direction} --out DIR"
