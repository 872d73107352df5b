"""The zoo variants and the options every variant accepts, on tiny nets and random tensors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

from gan_lightning.errors import ConfigError
from gan_lightning.models import CGAN, DCGAN, SNGAN, WGAN, WGANGP, LatentBatch, VanillaGAN
from gan_lightning.nets.conditioning import ProjectionDiscriminator
from gan_lightning.nets.layers import HistoricalAverages, MinibatchDiscrimination, VirtualBatchNorm
from tests.models.test_base_loop import changed, fit, params

MLP = {"hidden_g": [8], "hidden_d": [8], "latent_dim": 2}
CONV = {"width_g": 4, "width_d": 4, "latent_dim": 4}


@pytest.mark.parametrize("cls, cfg, shape", [
    (WGAN, {**CONV, "n_critic": 1}, (1, 28, 28)),
    (WGANGP, {**CONV, "n_critic": 1}, (1, 28, 28)),
    (WGANGP, {**CONV, "n_critic": 1}, (3, 32, 32)),  # any channel count and image size
    (SNGAN, CONV, (1, 28, 28)),
    (CGAN, CONV, (1, 28, 28)),
    (CGAN, {**CONV, "projection": True}, (1, 28, 28)),
])
def test_variant_one_d_and_g_step(cls, cfg, shape) -> None:
    model = cls(cfg, shape, num_classes=10 if cls.conditional else None)
    g_before, d_before = params(model.generator), params(model.discriminator)
    fit(model, steps=1, shape=shape)
    assert changed(g_before, model.generator) and changed(d_before, model.discriminator)
    labels = torch.arange(3) if cls.conditional else None
    assert model.generate(torch.randn(3, cfg["latent_dim"]), labels).shape == (3, *shape)


def test_recipes_are_the_published_ones() -> None:
    wgan = WGAN({}, (1, 28, 28)).config
    assert (wgan.loss, wgan.weight_clip, wgan.optimizer, wgan.lr_d, wgan.n_critic) == ("wasserstein", 0.01, "rmsprop",
                                                                                      5e-5, 5)
    gp = WGANGP({}, (1, 28, 28)).config
    assert (gp.gradient_penalty, gp.n_critic, gp.lr_d, gp.beta1, gp.beta2, gp.d_norm) == (10.0, 5, 1e-4, 0.0, 0.9,
                                                                                          "layer")
    sn = SNGAN(CONV, (1, 28, 28))
    assert sn.config.loss == "hinge"
    assert all(parametrize.is_parametrized(m, "weight") for m in sn.discriminator.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))


def test_weight_clipping_keeps_every_critic_weight_in_range() -> None:
    model = WGAN({**CONV, "n_critic": 1, "lr_d": 0.5, "weight_clip": 0.02}, (1, 28, 28))
    fit(model, steps=2)
    weights = torch.cat([p.detach().flatten() for p in model.discriminator.parameters()])
    assert weights.abs().max() <= 0.02 + 1e-7
    assert (weights.abs() == 0.02).any()  # the big lr pushed weights out: clipping really acted


def test_label_smoothing_target_reaches_the_d_loss() -> None:
    model = VanillaGAN({**MLP, "real_label": 0.9}, (2,))
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    loss, _ = model.discriminator_objective(LatentBatch(real, None), fake)
    real_logits, fake_logits = model.discriminator(real), model.discriminator(fake)
    expected = (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, 0.9))
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    torch.testing.assert_close(loss, expected)
    with pytest.raises(ConfigError, match="model.real_label"):
        VanillaGAN({**MLP, "real_label": 0.9, "loss": "hinge"}, (2,))


def test_feature_matching_is_the_squared_distance_of_feature_means() -> None:
    model = VanillaGAN({**MLP, "feature_matching_only": True}, (2,))
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    loss, logs = model.generator_objective(LatentBatch(real, None), fake)
    f_real, f_fake = model.discriminator.features(real), model.discriminator.features(fake)
    expected = ((f_real.mean(0) - f_fake.mean(0)) ** 2).sum()
    torch.testing.assert_close(loss, expected)
    weighted = VanillaGAN({**MLP, "feature_matching": 0.5}, (2,))
    weighted.load_state_dict(model.state_dict())
    loss, _ = weighted.generator_objective(LatentBatch(real, None), fake)
    torch.testing.assert_close(loss, F.binary_cross_entropy_with_logits(
        model.discriminator(fake), torch.ones(8)) + 0.5 * expected)


def test_gradient_penalty_in_the_critic_loss_and_batchnorm_refused() -> None:
    model = VanillaGAN({**MLP, "loss": "wasserstein", "gradient_penalty": 10.0}, (2,))
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    loss, logs = model.discriminator_objective(LatentBatch(real, None), fake)
    critic_loss = model.discriminator(fake).mean() - model.discriminator(real).mean()
    torch.testing.assert_close(loss, critic_loss + 10.0 * logs["gp"])  # the penalty enters with lambda = 10
    with pytest.raises(ConfigError, match="model.gradient_penalty"):
        DCGAN({**CONV, "gradient_penalty": 10.0}, (1, 28, 28))  # d_norm: batch


def test_packing_judges_m_samples_at_once() -> None:
    model = VanillaGAN({**MLP, "pack": 4}, (2,))
    assert model.discriminator.body[0].in_features == 8
    assert model.discriminate(torch.randn(12, 2), None).shape == (3,)
    conv = DCGAN({**CONV, "pack": 2}, (3, 32, 32))
    assert conv.discriminate(torch.randn(4, 3, 32, 32), None).shape == (2,)
    fit(model, steps=2, shape=(2,))
    with pytest.raises(ConfigError, match="model.pack"):
        CGAN({**CONV, "pack": 2}, (1, 28, 28), num_classes=10)


def test_minibatch_discrimination_option() -> None:
    for model in (VanillaGAN({**MLP, "minibatch_kernels": 3}, (2,)),
                  DCGAN({**CONV, "minibatch_kernels": 3}, (1, 28, 28))):
        assert any(isinstance(m, MinibatchDiscrimination) for m in model.discriminator.modules())
        shape = model.sample_shape
        assert model.discriminate(torch.randn(5, *shape), None).shape == (5,)
        fit(model, steps=1, shape=shape)


def test_historical_averages_are_the_mean_of_past_weights() -> None:
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    history = HistoricalAverages({"d": [p]})
    for value in ([3.0, 4.0], [5.0, 0.0]):
        p.data.copy_(torch.tensor(value))
        history.update("d", [p])
    torch.testing.assert_close(history.averages("d")[0], torch.tensor([3.0, 2.0]))
    model = VanillaGAN({**MLP, "historical_averaging": 0.1}, (2,))
    fit(model, steps=2, shape=(2,))
    assert int(model.historical.d_count) == 3 and int(model.historical.g_count) == 3


def test_virtual_batch_norm_uses_the_fixed_reference_batch() -> None:
    model = VanillaGAN({**MLP, "norm_g": "batch", "virtual_batch_norm": True, "vbn_reference_size": 16}, (2,))
    assert any(isinstance(m, VirtualBatchNorm) for m in model.generator.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in model.generator.modules())
    z = torch.randn(6, 2)
    alone = model.generate(z[:1])
    together = model.generate(z)
    torch.testing.assert_close(alone, together[:1])  # a sample does not depend on its batch
    reference = model.vbn_reference_z.clone()
    fit(model, steps=2, shape=(2,))
    assert torch.equal(reference, model.vbn_reference_z)
    with pytest.raises(ConfigError, match="model.virtual_batch_norm"):
        VanillaGAN({**MLP, "virtual_batch_norm": True}, (2,))  # no batchnorm in G to make virtual


def test_cgan_projection_and_class_by_row_labels() -> None:
    model = CGAN({**CONV, "projection": True}, (1, 28, 28), num_classes=10)
    assert isinstance(model.discriminator, ProjectionDiscriminator)
    assert model.fixed_labels(24, nrow=8).tolist() == [0] * 8 + [1] * 8 + [2] * 8
    z, labels = model.fixed_inputs(16, nrow=4)
    assert labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4
    x = torch.randn(4, 1, 28, 28)
    a = model.discriminate(x, torch.tensor([0, 0, 0, 0]))
    b = model.discriminate(x, torch.tensor([1, 1, 1, 1]))
    assert not torch.allclose(a, b)  # the label changes D's verdict


def test_mixture_latent_prior_draws_near_fixed_checkpointed_means() -> None:
    torch.manual_seed(0)
    config = {**MLP, "latent_dim": 4, "latent_prior": "mixture", "latent_components": 5,
              "latent_component_std": 1e-3}
    model = VanillaGAN(config, (2,))
    assert model.latent_means.shape == (5, 4) and "latent_means" in model.state_dict()
    z = model.sample_latent(2000, torch.Generator().manual_seed(1))
    distance, component = torch.cdist(z, model.latent_means).min(dim=1)
    assert distance.max() < 6 * 1e-3 * 2  # every draw sits on one of the means (sqrt(4) * std per coordinate)
    assert torch.bincount(component, minlength=5).min() > 300  # components drawn uniformly: 400 expected each
    torch.testing.assert_close(z, model.sample_latent(2000, torch.Generator().manual_seed(1)))
    # a model built under another seed but loaded from this one's weights draws the same latents
    torch.manual_seed(1)
    reloaded = VanillaGAN(config, (2,))
    assert not torch.equal(reloaded.latent_means, model.latent_means)
    reloaded.load_state_dict(model.state_dict())
    torch.testing.assert_close(reloaded.sample_latent(10, torch.Generator().manual_seed(2)),
                               model.sample_latent(10, torch.Generator().manual_seed(2)))
    fit(model, steps=1, shape=(2,))  # and it trains
    assert "latent_means" not in VanillaGAN(MLP, (2,)).state_dict()  # the normal prior has no means
    with pytest.raises(ConfigError, match="model.latent_prior: 'uniform'; accepted: normal, mixture"):
        VanillaGAN({**MLP, "latent_prior": "uniform"}, (2,))
