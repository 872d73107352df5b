"""Super-resolution models on tiny in-test batches: the no-discriminator update, the SRGAN and ESRGAN losses by hand,
``init_from``, the lr steps and the config checks."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from gan_lightning.errors import ConfigError, GanLightningError
from gan_lightning.models import ESRGAN, SRGAN, SRResNetModel
from gan_lightning.nets.vgg import VGGFeatures

HR = (1, 16, 16)
TINY_G = {"width_g": 4, "n_blocks": 1}
TINY_D = {"width_d": 2, "dense_d": 4, "vgg_random_weights": True}


class Pairs(Dataset):
    """HR crops and their 4x average-pooled LR versions, as the superres datamodule's dicts."""

    def __init__(self, n: int = 16, shape=HR) -> None:
        generator = torch.Generator().manual_seed(0)
        self.hr = torch.rand(n, *shape, generator=generator) * 2 - 1
        self.lr = F.avg_pool2d(self.hr, 4)

    def __len__(self) -> int:
        return len(self.hr)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"lr": self.lr[index], "hr": self.hr[index]}


def fit(model: L.LightningModule, steps: int, root: Path | None = None) -> L.Trainer:
    torch.manual_seed(0)
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=root)
    trainer.fit(model, DataLoader(Pairs(), batch_size=4, drop_last=True))
    return trainer


def batch(n: int = 2, shape=HR) -> dict[str, torch.Tensor]:
    hr = torch.rand(n, *shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    return {"lr": F.avg_pool2d(hr, 4), "hr": hr}


def test_srresnet_trains_g_alone_one_counted_step_per_batch() -> None:
    model = SRResNetModel(TINY_G, HR, scale=4)
    assert model.discriminator is None and model.discriminator_parameters() == []
    before = [p.detach().clone() for p in model.generator.parameters()]
    trainer = fit(model, steps=3)
    assert trainer.global_step == 3 and int(model.batches_seen) == 3
    assert len(trainer.optimizers) == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.generator.parameters(), strict=True))
    b = batch()
    loss, logs = model.generator_loss(b, model.make_fakes(b))
    assert loss.item() == pytest.approx(((model.make_fakes(b) - b["hr"]) ** 2).mean().item(), rel=1e-6)
    assert set(logs) == {"pixel"}


def test_srresnet_l1_and_weight() -> None:
    model = SRResNetModel({**TINY_G, "pixel_criterion": "l1", "pixel_weight": 0.5}, HR, scale=4)
    b = batch()
    fakes = model.make_fakes(b)
    assert model.generator_loss(b, fakes)[0].item() == pytest.approx(0.5 * (fakes - b["hr"]).abs().mean().item(),
                                                                     rel=1e-6)


def test_srgan_losses_by_hand() -> None:
    model = SRGAN({**TINY_G, **TINY_D, "pixel_weight": 0.25}, HR, scale=4)
    b = batch()
    fakes = model.make_fakes(b)
    vgg = VGGFeatures("relu5_4")
    vgg.load_state_dict(model.perceptual_network().state_dict())
    logit = model.discriminator(fakes)
    adversarial = -torch.log(torch.sigmoid(logit)).mean()
    content = ((vgg(fakes) - vgg(b["hr"])) ** 2).mean() / 12.75
    pixel = ((fakes - b["hr"]) ** 2).mean()
    loss, logs = model.generator_loss(b, fakes)
    assert loss.item() == pytest.approx((1e-3 * adversarial + content + 0.25 * pixel).item(), rel=1e-5)
    real = model.discriminator(b["hr"])
    fake = model.discriminator(fakes)
    d_expected = -torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(fake)).mean()
    assert model.discriminator_loss(b, fakes.detach())[0].item() == pytest.approx(d_expected.item(), rel=1e-5)
    assert "perceptual" not in dict(model.named_modules())  # the VGG is not part of the model's state
    assert not any(key.startswith("_vgg") for key in model.state_dict())


def test_esrgan_losses_by_hand() -> None:
    model = ESRGAN({**TINY_G, "n_blocks": 1, "growth": 2, **TINY_D}, HR, scale=4)
    assert model.config.perceptual_layer == "conv5_4" and model.config.relativistic
    b = batch()
    model.discriminator.eval()  # batch norm on running statistics: D's scores repeat between calls
    fakes = model.make_fakes(b)
    real, fake = model.discriminator(b["hr"]), model.discriminator(fakes)
    real_vs_fake, fake_vs_real = torch.sigmoid(real - fake.mean()), torch.sigmoid(fake - real.mean())
    g_adv = -torch.log(1 - real_vs_fake).mean() - torch.log(fake_vs_real).mean()
    vgg = model.perceptual_network()
    expected = 5e-3 * g_adv + (vgg(fakes) - vgg(b["hr"])).abs().mean() + 1e-2 * (fakes - b["hr"]).abs().mean()
    assert model.generator_loss(b, fakes)[0].item() == pytest.approx(expected.item(), rel=1e-5)
    d_adv = -torch.log(real_vs_fake).mean() - torch.log(1 - fake_vs_real).mean()
    assert model.discriminator_loss(b, fakes)[0].item() == pytest.approx(d_adv.item(), rel=1e-5)


def test_gan_trains_both_players_and_steps_the_lr() -> None:
    model = SRGAN({**TINY_G, **TINY_D, "lr_milestones": [2], "lr_gamma": 0.1}, HR, scale=4)
    d_before = [p.detach().clone() for p in model.discriminator.parameters()]
    trainer = fit(model, steps=3)
    assert trainer.global_step == 3
    assert any(not torch.equal(a, b) for a, b in zip(d_before, model.discriminator.parameters(), strict=True))
    assert [group["lr"] for opt in trainer.optimizers for group in opt.param_groups] == pytest.approx([1e-5, 1e-5])


def test_init_from_loads_g_and_refuses_another_architecture(tmp_path: Path) -> None:
    pretrained = SRResNetModel(TINY_G, HR, scale=4)
    trainer = fit(pretrained, steps=1, root=tmp_path)
    checkpoint = tmp_path / "psnr.ckpt"
    trainer.save_checkpoint(checkpoint)
    model = SRGAN({**TINY_G, **TINY_D, "init_from": str(checkpoint)}, HR, scale=4)
    for key, value in pretrained.generator.state_dict().items():
        assert torch.equal(model.generator.state_dict()[key], value), key
    with pytest.raises(ConfigError, match=r"^model.init_from: .*psnr.ckpt holds a generator that does not fit this "
                       r"model's \(srresnet x4, 1 channels, width 8, 1 blocks\): .*shape") as error:
        SRGAN({**TINY_D, "width_g": 8, "n_blocks": 1, "init_from": str(checkpoint)}, HR, scale=4)
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="lacks"):
        SRGAN({**TINY_G, **TINY_D, "n_blocks": 2, "init_from": str(checkpoint)}, HR, scale=4)
    with pytest.raises(ConfigError, match="model.init_from: checkpoint .*none.ckpt does not exist; train the PSNR"):
        SRGAN({**TINY_G, **TINY_D, "init_from": str(tmp_path / "none.ckpt")}, HR, scale=4)


@pytest.mark.parametrize("options, message", [
    ({"vgg_random_weights": False}, "model.vgg_weights: the content loss on VGG19 relu5_4 needs torchvision's"),
    ({"perceptual_layer": "relu9_9"}, "model.perceptual_layer"),
    ({"relativistic": True, "loss": "hinge"}, "model.relativistic"),
    ({"lr_milestones": [5, 2]}, "model.lr_milestones"),
    ({"generator": "unet"}, "model.generator"),
])
def test_bad_settings_are_one_line(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SRGAN({**TINY_G, **TINY_D, **options}, HR, scale=4)


def test_bad_shapes_are_one_line() -> None:
    with pytest.raises(ConfigError, match="not a multiple of the scale 3"):
        SRResNetModel(TINY_G, HR, scale=3)
    with pytest.raises(ConfigError, match="data.scale: 8"):
        SRResNetModel(TINY_G, HR, scale=8)
    with pytest.raises(ConfigError, match="model.n_critic"):
        SRResNetModel({**TINY_G, "n_critic": 2}, HR, scale=4)


def test_pixel_content_option_needs_no_vgg() -> None:
    model = SRGAN({**TINY_G, "width_d": 2, "dense_d": 4, "perceptual_layer": None, "pixel_weight": 1.0}, HR, scale=4)
    assert model.perceptual_network() is None
    b = batch()
    assert set(model.generator_loss(b, model.make_fakes(b))[1]) == {"g_adv", "pixel"}


def test_upscale_runs_g_in_eval_mode_and_translate_points_to_upscale() -> None:
    model = SRResNetModel(TINY_G, HR, scale=4)
    lr = batch()["lr"]
    model.generator.eval()
    expected = model.generator(lr)
    model.generator.train()
    assert torch.equal(model.upscale(lr), expected) and model.generator.training
    with pytest.raises(GanLightningError, match="srresnet upscales images at their own size: use gan-lightning "
                       "upscale CHECKPOINT"):
        model.translate(lr)
