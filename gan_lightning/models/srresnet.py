"""SRResNet (Ledig et al. 2017): the PSNR-oriented generator, trained by pixel MSE alone, without a discriminator.

The paper trains it with MSE, Adam(1e-4, beta1 0.9), 96 px HR crops, batch 16, 10^6 updates; its weights then
initialise SRGAN's G (``model.init_from``). ``model.generator=rrdb`` (with ``pixel_criterion: l1``) is ESRGAN's
PSNR-oriented RRDBNet the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from gan_lightning.models.superres import SuperResConfig, SuperResolutionModel
from gan_lightning.registry import register_model


@dataclass
class SRResNetConfig(SuperResConfig):
    name: str = "srresnet"


@register_model("srresnet")
class SRResNetModel(SuperResolutionModel):
    Config = SRResNetConfig
