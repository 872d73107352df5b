"""Isola et al. 2017, pix2pix: paired image-to-image translation with a conditional GAN.

G: x -> y is a U-Net (no z: dropout is its noise), D a 70x70 PatchGAN that judges (input, output) pairs, the
channel-concatenation of x with y or with G(x). On the shared loop the input x plays the part of the labels (a
condition both players see): ``split_batch`` gives (y, x). D minimises half the vanilla GAN loss (the paper divides
D's objective by 2 to slow it down relative to G), G the non-saturating GAN loss + lambda_l1 * mean |G(x) - y|
(lambda 100). The paper's recipe: batch norm, batch 1, Adam(2e-4, 0.5, 0.999), N(0, 0.02) init.

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

from gan_lightning.errors import GanLightningError, check_values
from gan_lightning.losses import cycle_consistency
from gan_lightning.models.base import GANConfig, GANModule, Preview, eval_forward
from gan_lightning.nets.translation import PatchDiscriminator, UnetGenerator, translation_init_
from gan_lightning.registry import register_model

INFERENCE_MODES = ("paper", "eval")


@dataclass
class Pix2PixConfig(GANConfig):
    name: str = "pix2pix"
    loss: str = "non_saturating"  # the paper's vanilla GAN loss on logits (G's side non-saturating)
    width_g: int = 64
    width_d: int = 64
    d_layers: int = 3  # stride-2 layers of the PatchGAN: 3 = 70x70 patches
    norm: str = "batch"  # batch (the paper) | instance | none
    lambda_l1: float = 100.0
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
class Pix2Pix(GANModule):
    Config = Pix2PixConfig
    latent_tools = False
    unsupported_options = ("pack", "gradient_penalty", "minibatch_kernels", "feature_matching", "virtual_batch_norm",
                           "feature_matching_only", "ema_decay")
    unsupported_reason = "its D judges (input, output) pairs, its G is an image-to-image net"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        experiment = self.hparams.get("experiment") or {}
        # The data's direction decides what G learned; translate() refuses the other one.
        self.direction = experiment.get("data", {}).get("direction", "AtoB")

    @classmethod
    def check_config(cls, config: DictConfig) -> None:
        super().check_config(config)
        checks = [("norm", config.norm in ("batch", "instance", "none"), "batch, instance, none"),
                  ("lambda_l1", config.lambda_l1 >= 0, "a float >= 0"),
                  ("inference", config.inference in INFERENCE_MODES, ", ".join(INFERENCE_MODES)),
                  ("d_layers", config.d_layers >= 1, "an int >= 1")]
        check_values("model", config, checks)

    # --- networks ---------------------------------------------------------------------------------------
    def build_generator(self) -> nn.Module:
        channels, size = self.sample_shape[0], self.sample_shape[-1]
        net = UnetGenerator(channels, channels, size, self.config.width_g, self.config.norm)
        translation_init_(net)
        return net

    def build_discriminator(self) -> nn.Module:
        net = PatchDiscriminator(2 * self.sample_shape[0], self.config.width_d, self.config.d_layers,
                                 self.config.norm)
        translation_init_(net)
        return net

    # --- the loop's hooks: the input x is the condition both players see ------------------------------------
    def split_batch(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        return batch["target"], batch["input"]

    def make_fakes(self, real: Tensor, condition: Tensor) -> Tensor:
        return self.generator(condition)

    def discriminate(self, x: Tensor, condition: Tensor) -> Tensor:
        return self.discriminator(torch.cat([condition, x], dim=1))

    def discriminator_loss(self, real: Tensor, fakes: Tensor, condition: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        loss, logs = super().discriminator_loss(real, fakes, condition)
        half = 0.5 * loss  # the paper: "we divide the objective by 2 while optimizing D"
        return half, {**logs, "d_loss": half}

    def generator_loss(self, real: Tensor, fakes: Tensor, condition: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        adversarial, logs = super().generator_loss(real, fakes, condition)
        l1 = cycle_consistency(fakes, real)  # the same formula, mean |G(x) - y|
        loss = adversarial + self.config.lambda_l1 * l1
        return loss, {**logs, "g_loss": loss, "g_adv": adversarial, "l1": l1}

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
        devices = [self.device] if self.device.type == "cuda" else []
        outputs = []
        with paper_inference(self.generator), torch.random.fork_rng(devices=devices):
            for image in images.split(1):  # batch 1, the paper's test protocol: no image sees another's statistics
                torch.manual_seed(self.config.sample_seed)  # the same dropout draw for every image
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

    def draw_samples(self, n: int, seed: int, label: int | None = None, nrow: int = 8) -> Tensor:
        raise GanLightningError(f"pix2pix translates images instead of sampling them: use gan-lightning translate "
                                f"CHECKPOINT --input DIR --direction {self.direction} --out DIR")
