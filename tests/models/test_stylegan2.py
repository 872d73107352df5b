"""StyleGAN2: the nets' numbers (equalised lr, demodulation, noise, truncation, w_avg, minibatch std), the lazy
regularisers' terms, one real step, the optimizers' lazy adjustment and a checkpoint round trip, on tiny nets."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gan_lightning.errors import ConfigError
from gan_lightning.models import CStyleGAN2, LatentBatch, StyleGAN2
from gan_lightning.nets import stylegan2 as nets
from gan_lightning.techniques.path_length import PathLength
from gan_lightning.techniques.r1 import R1, r1_gamma
from tests.models.test_base_loop import changed, fit, params

TINY = {"latent_dim": 8, "w_dim": 8, "channel_base": 64, "channel_max": 8, "mapping_layers": 1}
SHAPE = (1, 16, 16)


def tiny(**options) -> StyleGAN2:
    torch.manual_seed(0)
    return StyleGAN2({**TINY, **options}, SHAPE)


def test_equalised_lr_weights_are_unit_normal_scaled_at_run_time() -> None:
    torch.manual_seed(0)
    linear, conv = nets.EqualLinear(512, 256), nets.EqualConv2d(64, 32, 3)
    # 131,072 and 18,432 draws: the standard error of the sample std is 1/sqrt(2n) = 0.002 and 0.005.
    assert linear.weight.std().item() == pytest.approx(1.0, abs=0.01)
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.02)
    assert linear.weight_gain == pytest.approx(1 / math.sqrt(512))
    assert conv.weight_gain == pytest.approx(1 / math.sqrt(64 * 9))
    mapping = nets.EqualLinear(512, 256, lr_multiplier=0.01)  # stored std 1/0.01, run-time gain 0.01/sqrt(fan_in)
    assert mapping.weight.std().item() == pytest.approx(100.0, rel=0.01)
    assert mapping.weight_gain == pytest.approx(0.01 / math.sqrt(512)) and mapping.bias_gain == 0.01
    x = torch.randn(4, 512)
    torch.testing.assert_close(mapping(x), F.linear(x, mapping.weight * 0.01 / math.sqrt(512), mapping.bias * 0.01))
    assert (mapping.weight * mapping.weight_gain).std().item() == pytest.approx(1 / math.sqrt(512), rel=0.01)


def test_demodulated_conv_keeps_unit_variance_per_output_channel() -> None:
    torch.manual_seed(0)
    x, weight, styles = torch.randn(16, 32, 32, 32), torch.randn(24, 32, 3, 3), torch.rand(16, 32) * 2 + 0.1
    out = nets.modulated_conv2d(x, weight, styles)[:, :, 1:-1, 1:-1]  # interior: zero padding thins the borders
    # Each filter has unit L2 norm after demodulation, so for iid unit-variance inputs every output has variance
    # exactly 1 - O(1e-8). 16 x 30 x 30 = 14,400 values a channel: the standard error of a variance estimate is
    # sqrt(2 / n) = 0.012 for independent values, at most 3x that (0.036) since neighbouring outputs share inputs
    # of their 3x3 windows; 0.15 is 4 of those.
    variance = out.transpose(0, 1).reshape(24, -1).var(dim=1)
    assert ((variance - 1).abs() < 0.15).all(), variance
    # The grouped (fused) convolution and the scaled-activation form train and sample the same function.
    torch.testing.assert_close(out, nets.modulated_conv2d(x, weight, styles, fused=False)[:, :, 1:-1, 1:-1],
                               atol=1e-4, rtol=1e-4)
    # Without demodulation the variance follows the styles (no renormalisation).
    plain = nets.modulated_conv2d(x, weight, styles * 3, demodulate=False)[:, :, 1:-1, 1:-1]
    assert plain.var().item() > 10


def test_noise_strengths_start_at_zero_so_noise_modes_agree_at_init() -> None:
    model = tiny()
    layers = [m for m in model.generator.modules() if isinstance(m, nets.ModulatedConv)]
    assert len(layers) == 5 and all(m.noise_strength.item() == 0 for m in layers)  # 4x4: 1 conv, 8 and 16 px: 2
    g, z = model.generator.eval(), torch.randn(4, 8)
    torch.testing.assert_close(g(z, noise_mode="const"), g(z, noise_mode="random"), rtol=0, atol=0)
    with torch.no_grad():
        layers[-1].noise_strength.fill_(0.5)
    assert not torch.allclose(g(z, noise_mode="const"), g(z, noise_mode="random"))


def test_truncation_pulls_every_w_to_w_avg() -> None:
    model = tiny()
    g = model.generator.eval()
    with torch.no_grad():
        g.w_avg.copy_(torch.randn(8))
    z = torch.randn(5, 8)
    images = g(z, truncation_psi=0.0, noise_mode="const")
    at_average = g.synthesis(g.w_avg.expand(5, g.num_ws, -1), noise_mode="const")
    torch.testing.assert_close(images, at_average)
    torch.testing.assert_close(images, images[:1].expand_as(images))  # the same image for every z
    torch.testing.assert_close(g(z, truncation_psi=1.0, noise_mode="const"), g(z, noise_mode="const"))
    assert not torch.allclose(g(z, truncation_psi=0.5, noise_mode="const"), images)


def test_w_avg_moves_toward_the_batch_mean_of_w_in_training_forwards() -> None:
    model = tiny()
    g = model.generator
    with torch.no_grad():
        g.w_avg.copy_(torch.randn(8))
    before, z = g.w_avg.clone(), torch.randn(6, 8)
    w = g.mapping(z).detach()  # no update outside a training forward
    torch.testing.assert_close(g.w_avg, before, rtol=0, atol=0)
    g.train()(z)
    torch.testing.assert_close(g.w_avg, before + (1 - nets.W_AVG_BETA) * (w.mean(0) - before))
    g.eval()(z)
    torch.testing.assert_close(g.w_avg, before + (1 - 0.995) * (w.mean(0) - before))  # eval: no update


def test_style_mixing_takes_late_layers_from_a_second_z() -> None:
    model = tiny(style_mixing=1.0)
    g, z = model.generator, torch.randn(3, 8)
    ws = g.training_ws(z)
    w = g.mapping(z)
    cutoff = int((ws - w.unsqueeze(1)).abs().sum((0, 2)).ne(0).float().argmax())
    assert 1 <= cutoff < g.num_ws
    torch.testing.assert_close(ws[:, :cutoff], w.unsqueeze(1).expand(-1, cutoff, -1))
    assert torch.equal(ws[:, cutoff:], ws[:, -1:].expand(-1, g.num_ws - cutoff, -1))  # one w from cutoff on


def test_minibatch_std_appends_the_hand_computed_group_std() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 3, 4, 4)
    out = nets.minibatch_stddev(x, 4)
    assert out.shape == (8, 4, 4, 4) and torch.equal(out[:, :3], x)
    for first in (0, 1):  # two groups of 4: samples i with i mod 2 == first (the reference's grouping)
        group = x[first::2]
        expected = (group.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        for i in range(first, 8, 2):
            torch.testing.assert_close(out[i, 3], expected.expand(4, 4))
    small = nets.minibatch_stddev(x[:3], 4)  # the group clamped to the batch
    torch.testing.assert_close(small[0, 3, 0, 0], (x[:3].var(dim=0, unbiased=False) + 1e-8).sqrt().mean())


def test_minibatch_std_with_several_channels_gives_one_std_per_channel_slice() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 6, 4, 4)
    out = nets.minibatch_stddev(x, 4, num_channels=3)
    assert out.shape == (8, 9, 4, 4) and torch.equal(out[:, :6], x)
    for first in (0, 1):
        group = x[first::2]
        for slice_index in range(3):  # channels 2k, 2k + 1 make slice k (the reference's reshape)
            part = group[:, 2 * slice_index : 2 * slice_index + 2]
            expected = (part.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
            for i in range(first, 8, 2):
                torch.testing.assert_close(out[i, 6 + slice_index], expected.expand(4, 4))
    torch.testing.assert_close(nets.minibatch_stddev(x, 4, num_channels=1), nets.minibatch_stddev(x, 4))
    with pytest.raises(ValueError, match="do not split into 4 equal slices"):
        nets.minibatch_stddev(x, 4, num_channels=4)
    d = nets.StyleGAN2Discriminator(1, 8, channel_base=64, channel_max=16, mbstd_channels=4)
    assert d.conv.weight.shape[1] == 16 + 4 and d(torch.randn(4, 1, 8, 8)).shape == (4,)


def test_r1_term_is_gamma_over_2_times_interval_on_its_batches_only() -> None:
    model = tiny(r1_gamma=0.5, r1_interval=4, pl_weight=0.0)
    torch.manual_seed(1)
    batch, fakes = LatentBatch(torch.randn(8, *SHAPE), None), torch.randn(8, *SHAPE)
    real = batch.real.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.discriminator(real).sum(), real)
    penalty = grad.square().flatten(1).sum(1).mean()
    technique = model.technique(R1)
    for count in range(9):
        model._batch_count = count
        term = technique.discriminator_term(model, batch, fakes)
        if count % 4:
            assert term is None
            continue
        name, value, weight = term
        assert name == "r1" and weight == pytest.approx(0.5 / 2 * 4) and value.requires_grad  # create_graph
        torch.testing.assert_close(value, penalty)
    model._batch_count = 0
    loss, logs = model.discriminator_objective(batch, fakes)
    d_loss, _ = model.discriminator_loss(batch, fakes)
    torch.testing.assert_close(loss, d_loss + 0.5 / 2 * 4 * penalty)
    model._batch_count = 1
    assert "r1" not in model.discriminator_objective(batch, fakes)[1]
    assert tiny().config.r1_gamma is None  # null: the heuristic 0.0002 * res^2 / 32
    assert r1_gamma(tiny().config, 16) == pytest.approx(0.0002 * 256 / 32)


def test_packed_d_scores_packs_and_takes_r1_per_pack() -> None:
    """PacGAN on StyleGAN2: D reads m samples along the channels and gives one score per pack; R1 is the mean over
    packs of the pack's squared gradient norm (its members' summed), as WGAN-GP's penalty on packed inputs."""
    model = tiny(r1_gamma=0.5, r1_interval=4, pl_weight=0.0, pack=2)
    assert model.discriminator.from_rgb.weight.shape[1] == 2  # two 1-channel samples a D input
    torch.manual_seed(1)
    batch = LatentBatch(torch.randn(8, *SHAPE), None)
    assert model.discriminate(batch.real, None).shape == (4,)
    packed = batch.real.reshape(4, 2, *SHAPE[1:]).clone().requires_grad_(True)  # samples 2k, 2k+1 -> pack k
    (grad,) = torch.autograd.grad(model.discriminator(packed).sum(), packed)
    model._batch_count = 0
    _, value, _ = model.technique(R1).discriminator_term(model, batch, batch.real)
    torch.testing.assert_close(value, grad.square().sum() / 4)
    before = params(model.discriminator)
    fit(model, steps=2, shape=SHAPE)
    assert changed(before, model.discriminator)
    with pytest.raises(ConfigError, match="model.pack: packing is for unconditional models"):
        CStyleGAN2({**TINY, "pack": 2}, SHAPE, num_classes=10)


def test_path_length_term_on_its_batches_only_and_pl_mean_tracks_lengths() -> None:
    model = tiny(pl_weight=2.0, pl_interval=4, pl_decay=0.01)
    batch = LatentBatch(torch.randn(8, *SHAPE), None)
    fakes = model.make_fakes(batch)
    model._batch_count = 3
    _, logs = model.generator_objective(batch, fakes)
    assert "pl" not in logs and model.pl_mean.item() == 0
    model._batch_count = 4
    name, value, weight = model.technique(PathLength).generator_term(model, batch, fakes)
    assert name == "pl" and weight == pytest.approx(2.0 * 4) and value.requires_grad
    assert 0 < model.pl_mean.item()  # moved from 0 by 1% of the mean length
    # The value by hand, from the same random draws: lengths sqrt(mean_layers |J_w^T y|^2), a = pl_mean + 1% of the
    # way to their mean, penalty mean (L - a)^2.
    pl_mean = model.pl_mean.clone()
    torch.manual_seed(7)
    _, value, _ = model.technique(PathLength).generator_term(model, batch, fakes)
    torch.manual_seed(7)
    g = model.generator
    ws = g.training_ws(model.sample_latent(4))  # batch 8 // pl_batch_shrink 2
    images = g.synthesis(ws)
    y = torch.randn_like(images) / 16  # sqrt(16 * 16)
    (grads,) = torch.autograd.grad((images * y).sum(), ws)
    lengths = grads.square().sum(2).mean(1).sqrt()
    expected_mean = pl_mean + 0.01 * (lengths.mean() - pl_mean)
    torch.testing.assert_close(model.pl_mean, expected_mean)
    torch.testing.assert_close(value, (lengths - expected_mean).square().mean())
    rhythm = tiny(n_critic=2)  # G updates on batches 1, 3, 5, ...: the term on G updates 0, 4, ... = batches 1, 9
    hits = [count for count in range(1, 12, 2) if not setattr(rhythm, "_batch_count", count)
            and rhythm.technique(PathLength).generator_term(rhythm, batch, rhythm.make_fakes(batch)) is not None]
    assert hits == [1, 9]
    with pytest.raises(ConfigError, match="model.pl_decay"):
        tiny(pl_decay=0.0)


def test_one_d_and_g_step_changes_both_networks_and_the_lazy_optimizer_settings() -> None:
    for model in (tiny(), CStyleGAN2(TINY, SHAPE, num_classes=10)):
        g_before, d_before = params(model.generator), params(model.discriminator)
        trainer = fit(model, steps=1, shape=SHAPE)
        assert changed(g_before, model.generator) and changed(d_before, model.discriminator)
        assert model.pl_mean.item() > 0 and model.generator.w_avg.abs().sum() > 0  # batch 0: a path length batch
        labels = torch.arange(3) if model.conditional else None
        assert model.generate(torch.randn(3, 8), labels).shape == (3, *SHAPE)
        opt_d, opt_g = (o.optimizer for o in trainer.optimizers) if hasattr(trainer.optimizers[0], "optimizer") \
            else trainer.optimizers
        assert opt_d.param_groups[0]["lr"] == pytest.approx(0.0025 * 16 / 17)
        assert opt_g.param_groups[0]["lr"] == pytest.approx(0.0025 * 4 / 5)
        assert opt_d.param_groups[0]["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))
        assert opt_g.param_groups[0]["betas"] == pytest.approx((0.0, 0.99 ** (4 / 5)))


def test_checkpoint_round_trip_restores_w_avg_and_pl_mean(tmp_path: Path) -> None:
    model = tiny()
    trainer = fit(model, steps=1, shape=SHAPE)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    loaded = StyleGAN2.load_from_checkpoint(path, weights_only=True)
    assert model.pl_mean.item() != 0 and model.generator.w_avg.abs().sum() > 0
    torch.testing.assert_close(loaded.pl_mean, model.pl_mean, rtol=0, atol=0)
    torch.testing.assert_close(loaded.generator.w_avg, model.generator.w_avg, rtol=0, atol=0)
    torch.testing.assert_close(loaded.generator_ema.w_avg, model.generator_ema.w_avg, rtol=0, atol=0)


def test_image_sizes_it_cannot_model_are_refused() -> None:
    with pytest.raises(ConfigError, match="power-of-two"):
        StyleGAN2(TINY, (1, 28, 28))


def test_metrics_see_images_clamped_to_data_space() -> None:
    model = tiny()
    with torch.no_grad():
        model.generator.synthesis.torgbs[-1].bias.fill_(3.0)  # the linear output leaves [-1, 1]
    assert model.generate(torch.randn(4, 8)).max() > 1
    samples = torch.cat(list(model.eval_samples(6, 4, seed=0)))
    assert samples.shape == (6, *SHAPE) and samples.max() == 1.0 and samples.min() >= -1.0


def _noisy(model: StyleGAN2) -> StyleGAN2:
    """Noise inputs that change the image (their strengths start at 0), so the noise maps drawn matter."""
    with torch.no_grad():
        for layer in model.generator_ema.synthesis.modules():
            if hasattr(layer, "noise_strength"):
                layer.noise_strength.fill_(0.5)
    return model


def test_seeded_evaluation_and_sampling_repeat_with_random_noise_and_leave_the_global_rng_alone() -> None:
    model = _noisy(tiny(ema_decay=0.9))
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = torch.cat(list(model.eval_samples(10, 4, seed=7)))
    assert torch.equal(torch.get_rng_state(), state)  # a training run's random stream is where it was
    torch.manual_seed(999)  # whatever the caller's RNG holds, the samples are the seed's
    torch.testing.assert_close(torch.cat(list(model.eval_samples(10, 4, seed=7))), first, rtol=0, atol=0)
    assert not torch.equal(torch.cat(list(model.eval_samples(10, 4, seed=8))), first)
    # two ranks' shares (batches 0 and 2, batch 1) are the single process's batches: noise follows the batch index
    rank0, rank1 = (list(model.eval_samples(10, 4, seed=7, shard=(rank, 2))) for rank in (0, 1))
    torch.testing.assert_close(torch.cat([rank0[0], rank1[0], rank0[1]]), first, rtol=0, atol=0)
    # the same latents with fresh noise maps give other images: the test sees the noise, not only the latents
    z = model.sample_latent(10, torch.Generator().manual_seed(7))
    assert not torch.equal(model.generate(z[:4], noise="random").clamp(-1.0, 1.0), first[:4])
    torch.testing.assert_close(model.draw_samples(6, seed=3), model.draw_samples(6, seed=3), rtol=0, atol=0)
