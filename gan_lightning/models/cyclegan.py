"""Zhu et al. 2017, CycleGAN: unpaired translation between domains A and B.

G: A -> B and F: B -> A (ResNet generators), D_A and D_B (70x70 PatchGANs). On the shared loop: the "generator"
optimizer holds G and F, the "discriminator" one D_A and D_B; per batch D learns from pooled past fakes, then G and
F from the adversarial loss of both mappings + lambda_cycle * (|F(G(a)) - a|_1 + |G(F(b)) - b|_1) + lambda_identity
* lambda_cycle * (|G(b) - b|_1 + |F(a) - a|_1). The paper's recipe: least-squares adversarial loss, lambda_cycle 10,
identity 0.5, pools of 50, Adam(2e-4, 0.5, 0.999), batch 1, 100 epochs at constant lr then 100 of linear decay.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from gan_lightning.losses import cycle_consistency
from gan_lightning.models.base import Preview, eval_forward
from gan_lightning.models.translation import ImageTranslationConfig, ImageTranslationModel
from gan_lightning.nets.layers import ImagePool
from gan_lightning.nets.translation import PatchDiscriminator, ResnetGenerator, check_patch_input, translation_init_
from gan_lightning.registry import register_model

DIRECTIONS = {"AtoB": "AB", "BtoA": "BA"}


@dataclass
class CycleGANConfig(ImageTranslationConfig):
    name: str = "cyclegan"
    loss: str = "least_squares"
    width_g: int = 64  # channels of G's first layer
    width_d: int = 64  # channels of D's first layer
    n_blocks: int | None = None  # residual blocks; null = 9 at 256 px and above, 6 below (the paper)
    d_layers: int = 3  # stride-2 layers of the PatchGAN: 3 = 70x70 patches
    norm: str = "instance"  # instance | batch | none
    lambda_cycle: float = 10.0  # weight of the cycle-consistency L1 loss (lambda)
    lambda_identity: float = 0.5  # times lambda_cycle; 0 = no identity loss
    pool_size: int = 50  # past fakes D learns from; 0 = the current batch only


@register_model("cyclegan")
class CycleGAN(ImageTranslationModel):
    """``generator`` holds G ("AB") and F ("BA"), ``discriminator`` D_B ("B") and D_A ("A"): one optimizer each."""

    Config = CycleGANConfig

    def init_data(self) -> None:
        seed = self.config.sample_seed
        self.pools = {domain: ImagePool(self.config.pool_size, 0.5, seed + i) for i, domain in enumerate("AB")}

    @classmethod
    def config_checks(cls, config: DictConfig) -> list[tuple[str, bool, str]]:
        return [*super().config_checks(config),
                ("norm", config.norm in ("instance", "batch", "none"), "instance, batch, none"),
                ("lambda_cycle", config.lambda_cycle >= 0, "a float >= 0"),
                ("lambda_identity", config.lambda_identity >= 0, "a float >= 0"),
                ("pool_size", config.pool_size >= 0, "an int >= 0"),
                ("n_blocks", config.n_blocks is None or config.n_blocks >= 0, "null or an int >= 0"),
                ("d_layers", config.d_layers >= 1, "an int >= 1"),
                ("width_g", config.width_g >= 1, "an int >= 1"),
                ("width_d", config.width_d >= 1, "an int >= 1")]

    # --- networks ---------------------------------------------------------------------------------------
    def build_generator(self) -> nn.Module:
        channels, size = self.sample_shape[0], self.sample_shape[-1]
        if size % 4:
            raise ValueError(f"the ResNet generator needs an image side divisible by 4, got {size}")
        blocks = self.config.n_blocks if self.config.n_blocks is not None else (9 if size >= 256 else 6)
        nets = nn.ModuleDict({direction: ResnetGenerator(channels, channels, self.config.width_g, blocks,
                                                         self.config.norm) for direction in ("AB", "BA")})
        translation_init_(nets)
        return nets

    def build_discriminator(self) -> nn.Module:
        check_patch_input(self.sample_shape[-1], self.config.d_layers)
        nets = nn.ModuleDict({domain: PatchDiscriminator(self.sample_shape[0], self.config.width_d,
                                                         self.config.d_layers, self.config.norm) for domain in "AB"})
        translation_init_(nets)
        return nets

    # --- the loop's hooks ---------------------------------------------------------------------------------
    def prepare_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return batch  # {"A": images, "B": images}: unaligned

    def make_fakes(self, real: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"B": self.generator["AB"](real["A"]), "A": self.generator["BA"](real["B"])}

    def discriminator_loss(self, real: dict[str, Tensor], fakes: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        logs, total = {}, 0.0
        for domain in "AB":
            pooled = self.pools[domain].query(fakes[domain])
            real_scores = self.discriminator[domain](real[domain])
            fake_scores = self.discriminator[domain](pooled)
            loss = self.d_loss_fn(real_scores, fake_scores)
            logs[f"d_{domain.lower()}"] = loss
            logs[f"d_{domain.lower()}_real"] = self.score_summary(real_scores)
            logs[f"d_{domain.lower()}_fake"] = self.score_summary(fake_scores)
            total = total + loss
        return total, logs

    def generator_loss(self, real: dict[str, Tensor], fakes: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        config = self.config
        # The paper's generator objective is mean (D(G(a)) - 1)^2, twice the 1/2-scaled LSGAN loss of losses.py.
        weight = 2.0 if config.loss == "least_squares" else 1.0
        adversarial = weight * (self.g_loss_fn(self.discriminator["B"](fakes["B"]))
                                + self.g_loss_fn(self.discriminator["A"](fakes["A"])))
        cycle = (cycle_consistency(self.generator["BA"](fakes["B"]), real["A"])
                 + cycle_consistency(self.generator["AB"](fakes["A"]), real["B"]))
        loss = adversarial + config.lambda_cycle * cycle
        logs = {"g_adv": adversarial, "cycle": cycle}
        if config.lambda_identity > 0:
            identity = (cycle_consistency(self.generator["AB"](real["B"]), real["B"])
                        + cycle_consistency(self.generator["BA"](real["A"]), real["A"]))
            loss = loss + config.lambda_identity * config.lambda_cycle * identity
            logs["identity"] = identity
        return loss, logs

    # --- pools travel with the checkpoint (exact resume) ------------------------------------------------------
    def checkpoint_extras(self) -> dict[str, Any]:
        return {"image_pools": {domain: pool.state_dict() for domain, pool in self.pools.items()}}

    def load_checkpoint_extras(self, checkpoint: dict[str, Any]) -> None:
        for domain, state in checkpoint.get("image_pools", {}).items():
            self.pools[domain].load_state_dict(state, self.device)

    # --- what the model shows -----------------------------------------------------------------------------
    @torch.no_grad()
    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor:
        """Images of one domain in [-1, 1] -> the other domain, with the nets in eval mode."""
        return eval_forward(self.generator[DIRECTIONS[direction]], images.to(self.device))

    def preview(self, n: int, nrow: int, datamodule: Any = None) -> Preview:
        """Rows a, G(a), F(G(a)), b, F(b), G(F(b)) for the first ``nrow`` test images of each domain."""
        a, b = datamodule.test_images("A", nrow), datamodule.test_images("B", nrow)
        k = min(len(a), len(b))
        a, b = a[:k], b[:k]
        g_a, f_b = self.translate(a, "AtoB"), self.translate(b, "BtoA")
        rows = [a.to(self.device), g_a, self.translate(g_a, "BtoA"), b.to(self.device), f_b,
                self.translate(f_b, "AtoB")]
        return Preview(torch.cat(rows), k, ("a", "G(a)", "F(G(a))", "b", "F(b)", "G(F(b))"))

    def eval_samples(self, n: int, batch_size: int, seed: int, datamodule: Any = None,
                     shard: tuple[int, int] = (0, 1)) -> Iterator[Tensor]:
        """G over the first ``n`` test images of A (all of them if fewer): scored against test B. With ``shard`` =
        (rank, world size), only batches rank, rank + world, ..."""
        rank, world = shard
        for batch in datamodule.test_images("A", n).split(batch_size)[rank::world]:
            yield self.translate(batch, "AtoB")

    def eval_sample_count(self, n: int, datamodule: Any = None) -> int:
        return len(datamodule.test_images("A", n))

    @property
    def translate_usage(self) -> str:
        return "gan-lightning translate CHECKPOINT --input DIR --direction AtoB --out DIR"
