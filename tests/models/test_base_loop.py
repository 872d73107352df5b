"""The alternating D/G loop: one real step per variant, n_critic rhythm, max_steps = batches, EMA, clipping."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from gan_lightning import registry
from gan_lightning.models import DCGAN, VanillaGAN
from gan_lightning.techniques import EMA


def fit(model: L.LightningModule, steps: int, n: int = 32, batch_size: int = 8, shape=(1, 28, 28)) -> L.Trainer:
    torch.manual_seed(0)
    data = TensorDataset(torch.rand(n, *shape) * 2 - 1, torch.arange(n) % 10)
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, DataLoader(data, batch_size=batch_size, drop_last=True))
    return trainer


def params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


VARIANTS = [
    (VanillaGAN, {"hidden_g": [16], "hidden_d": [16], "latent_dim": 4}, (1, 28, 28)),
    (VanillaGAN, {"hidden_g": [8], "hidden_d": [8], "latent_dim": 2}, (2,)),
    (DCGAN, {"width_g": 4, "width_d": 4, "latent_dim": 4}, (1, 28, 28)),
    (DCGAN, {"width_g": 4, "width_d": 4, "latent_dim": 4}, (3, 32, 32)),
    (DCGAN, {"width_g": 2, "width_d": 2, "latent_dim": 4, "d_norm": "layer"}, (1, 64, 64)),
]


@pytest.mark.parametrize("cls, cfg, shape", VARIANTS)
def test_one_d_and_g_step_updates_both_networks(cls, cfg, shape) -> None:
    model = cls(cfg, shape)
    g_before, d_before = params(model.generator), params(model.discriminator)
    trainer = fit(model, steps=1, shape=shape)
    assert trainer.global_step == 1 and int(model.batches_seen) == 1
    assert changed(g_before, model.generator) and changed(d_before, model.discriminator)
    samples = model.generate(torch.randn(3, cfg["latent_dim"]))
    assert samples.shape == (3, *shape)
    if len(shape) == 3:
        assert samples.abs().max() <= 1.0  # Tanh output: images in data space [-1, 1]


def test_registry_knows_the_variants() -> None:
    assert registry.get_model_class("gan") is VanillaGAN and registry.get_model_class("dcgan") is DCGAN


def test_max_steps_counts_batches_and_n_critic_sets_the_rhythm(monkeypatch: pytest.MonkeyPatch) -> None:
    model = VanillaGAN({"hidden_g": [8], "hidden_d": [8], "latent_dim": 2, "n_critic": 3}, (2,))
    calls = []
    for name in ("discriminator_loss", "generator_loss"):
        original = getattr(model, name)

        def spy(*args, _name=name, _original=original):
            calls.append(_name[0])
            return _original(*args)

        monkeypatch.setattr(model, name, spy)
    trainer = fit(model, steps=7, n=64, shape=(2,))
    # 7 batches: a D step on each, a G step after every 3rd -> 9 optimizer steps, yet global_step == 7.
    assert trainer.global_step == 7 and int(model.batches_seen) == 7
    assert calls.count("d") == 7 and calls.count("g") == 2
    assert "".join(calls) == "dddgdddgd"


def test_generator_frozen_on_critic_only_batches() -> None:
    model = VanillaGAN({"hidden_g": [8], "hidden_d": [8], "latent_dim": 2, "n_critic": 5}, (2,))
    g_before = params(model.generator)
    fit(model, steps=4, shape=(2,))
    assert not changed(g_before, model.generator)  # 4 < n_critic: the critic trained alone


def test_ema_tracks_generator() -> None:
    model = VanillaGAN({"hidden_g": [8], "hidden_d": [8], "latent_dim": 2, "ema_decay": 0.5}, (2,))
    start = params(model.generator)
    fit(model, steps=1, shape=(2,))
    # After one G step from identical weights: ema = 0.5 * start + 0.5 * new.
    for ema, old, new in zip(model.generator_ema.parameters(), start, model.generator.parameters(), strict=True):
        torch.testing.assert_close(ema, 0.5 * old + 0.5 * new.detach())
    assert model.sampling_generator is model.generator_ema


def test_ema_rampup_caps_the_half_life_at_a_fraction_of_the_batches_so_far() -> None:
    model = VanillaGAN({"hidden_g": [8], "hidden_d": [8], "latent_dim": 2, "ema_decay": 0.5 ** (1 / 100),
                        "ema_rampup": 0.05}, (2,))
    ema = model.technique(EMA)
    assert ema.decay(0) == 0.0  # nothing trained yet: a plain copy
    assert ema.decay(40) == pytest.approx(0.5 ** (1 / 2))  # half-life 0.05 * 40 = 2 batches
    assert ema.decay(1000) == pytest.approx(0.5 ** (1 / 50))  # 0.05 * 1000 = 50 < 100
    assert ema.decay(4000) == pytest.approx(0.5 ** (1 / 100))  # capped by ema_decay's own half-life, 100 batches
    plain = VanillaGAN({"hidden_g": [8], "hidden_d": [8], "latent_dim": 2, "ema_decay": 0.9}, (2,))
    assert plain.technique(EMA).decay(0) == plain.technique(EMA).decay(10**6) == 0.9  # no ramp-up: constant


class NormRecordingGAN(VanillaGAN):
    """Records the gradient norm each optimizer sees when it steps (after any clipping)."""

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        super().on_before_optimizer_step(optimizer)  # the base checks and clips here
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        self.norms = getattr(self, "norms", []) + [torch.linalg.vector_norm(torch.stack(
            [torch.linalg.vector_norm(g) for g in grads])).item()]


def test_gradient_clipping_bounds_the_norm_per_optimizer() -> None:
    base = {"hidden_g": [8], "hidden_d": [8], "latent_dim": 2, "lr_d": 1e-3}
    free = NormRecordingGAN(base, (2,))
    clipped = NormRecordingGAN({**base, "grad_clip_d": 1e-3, "grad_clip_g": 2e-3}, (2,))
    fit(free, steps=1, shape=(2,))
    fit(clipped, steps=1, shape=(2,))
    assert free.norms[0] > 1e-2 and free.norms[1] > 1e-2  # unclipped norms are far above the limits
    assert clipped.norms[0] == pytest.approx(1e-3, rel=1e-4)  # D, then G: each clipped to its own limit
    assert clipped.norms[1] == pytest.approx(2e-3, rel=1e-4)


def test_linear_decay_schedule_reaches_zero() -> None:
    model = VanillaGAN({"hidden_g": [8], "hidden_d": [8], "latent_dim": 2, "lr_schedule": "linear_decay",
                        "lr_decay_start": 2}, (2,))
    trainer = fit(model, steps=6, shape=(2,), n=64)
    lrs = [opt.param_groups[0]["lr"] for opt in trainer.optimizers]
    assert lrs == [0.0, 0.0]


def test_conditional_flag_requires_labels() -> None:
    from gan_lightning.errors import ConfigError

    class Conditional(VanillaGAN):
        conditional = True

    with pytest.raises(ConfigError, match="conditional but the data has no class labels"):
        Conditional({"hidden_g": [8], "hidden_d": [8]}, (2,), num_classes=None)
    model = Conditional({"hidden_g": [8], "hidden_d": [8], "latent_dim": 2}, (2,), num_classes=10)
    fit(model, steps=2, shape=(2,))
    assert model.fixed_labels(12).tolist() == [*range(10), 0, 1]


def fit_16_mixed(model: L.LightningModule, steps: int, init_scale: float) -> torch.amp.GradScaler:
    """16-mixed on CPU through Lightning's MixedPrecision plugin and a CPU GradScaler (``trainer.precision`` alone
    has no fp16 scaler on CPU)."""
    from lightning.pytorch.plugins.precision import MixedPrecision

    torch.manual_seed(0)
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)])
    trainer.fit(model, DataLoader(TensorDataset(torch.rand(64, 2)), batch_size=8, drop_last=True))
    return scaler


class FusedAdamGAN(VanillaGAN):
    """Fused Adam, as the base picks on GPUs (one kernel per step; the guard's verdict is the same)."""

    def _make_optimizer(self, params, lr):
        return torch.optim.Adam(params, lr=lr, betas=(self.config.beta1, self.config.beta2), fused=True)


@pytest.mark.parametrize("cls", [VanillaGAN, FusedAdamGAN], ids=["adam", "fused-adam"])
def test_grad_scaler_overflow_skips_are_not_divergence(cls) -> None:
    # A scale of 2^40 makes every fp16 gradient overflow: the scaler skips each update and halves the scale.
    model = cls({"hidden_g": [8], "hidden_d": [8], "latent_dim": 2, "max_nonfinite_batches": 1}, (2,))
    scaler = fit_16_mixed(model, steps=6, init_scale=2.0**40)
    assert model.engine.amp_skipped_steps == 12 and scaler.get_scale() == 2.0**28  # 6 D + 6 G updates skipped
    assert not model.engine._direct  # the scaler lives in Lightning's wrappers
    # The guard (which allows 1) never tripped.
    assert model.engine.skipped_steps == 0 and model.engine.nonfinite_streak == 0


def test_gradient_clipping_under_16_mixed_bounds_the_unscaled_gradients() -> None:
    model = NormRecordingGAN({"hidden_g": [8], "hidden_d": [8], "latent_dim": 2, "lr_d": 1e-3,
                              "grad_clip_d": 1e-3, "grad_clip_g": 2e-3}, (2,))
    fit_16_mixed(model, steps=1, init_scale=2.0**16)
    # Clipping after unscaling: the true norm is the bound, not bound / 65536.
    assert model.norms[0] == pytest.approx(1e-3, rel=1e-3) and model.norms[1] == pytest.approx(2e-3, rel=1e-3)


class LrRecordingGAN(VanillaGAN):
    def on_train_batch_start(self, batch, batch_idx) -> None:
        self.lrs = getattr(self, "lrs", []) + [self.optimizers()[0].param_groups[0]["lr"]]


def test_linear_decay_in_epochs() -> None:
    # 32 samples / batch 8 = 4 batches per epoch; decay from epoch 2 to 0 at epoch 4.
    model = LrRecordingGAN({"hidden_g": [8], "hidden_d": [8], "latent_dim": 2, "lr_d": 1e-3,
                            "lr_schedule": "linear_decay", "lr_schedule_unit": "epochs", "lr_decay_start": 2,
                            "lr_decay_end": 4}, (2,))
    fit(model, steps=20, shape=(2,))
    per_epoch = [model.lrs[i : i + 4] for i in range(0, 20, 4)]
    # The lr a batch trains with is set by the scheduler step after the batch before it.
    assert per_epoch[0] == per_epoch[1][:1] * 4 == [1e-3] * 4 and per_epoch[1] == [1e-3] * 4
    assert per_epoch[2] == [1e-3] * 4 and per_epoch[3] == pytest.approx([5e-4] * 4) and per_epoch[4] == [0.0] * 4


def test_dict_batches_name_image_and_label() -> None:
    from gan_lightning.models import CGAN

    model = CGAN({"width_g": 4, "width_d": 4, "latent_dim": 4}, (1, 28, 28), num_classes=10)
    images, labels = torch.zeros(2, 1, 28, 28), torch.tensor([3, 4])
    real, got = model.prepare_batch({"image": images, "label": labels})
    assert real is images and got is labels
    assert VanillaGAN({"hidden_g": [8], "hidden_d": [8]}, (2,)).prepare_batch({"image": images, "label": labels})[1] \
        is None  # unconditional models ignore labels


def penalty_and_critic_grads(critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor,
                             scale: float | None) -> tuple[float, torch.Tensor]:
    """The gradient penalty and its (unscaled) gradient on the critic's weights: float32 (scale None), or fp16
    autocast with the penalty's backward scaled like a GradScaler's."""
    from gan_lightning.losses import gradient_penalty

    critic.zero_grad()
    with torch.autocast("cpu", dtype=torch.float16, enabled=scale is not None):
        penalty = gradient_penalty(critic, real, fake, eps, output_scale=scale or 1.0)
    (penalty * (scale or 1.0)).backward()
    grads = torch.cat([p.grad.flatten() for p in critic.parameters() if p.grad is not None]) / (scale or 1.0)
    return penalty.item(), grads


def test_gradient_penalty_under_16_mixed_agrees_with_float32() -> None:
    from gan_lightning.models import WGANGP

    torch.manual_seed(0)
    model = WGANGP({"width_g": 16, "width_d": 16, "latent_dim": 8}, (1, 28, 28))
    real, fake = torch.rand(32, 1, 28, 28) * 2 - 1, model.generator(torch.randn(32, 8)).detach()
    eps, critic = torch.rand(32), model.discriminator
    exact, exact_grads = penalty_and_critic_grads(critic, real, fake, eps, None)
    amp, amp_grads = penalty_and_critic_grads(critic, real, fake, eps, 2.0**16)
    # Measured (torch 2.15 CPU): penalty 8e-5 relative, critic gradients 1e-3 relative.
    assert amp == pytest.approx(exact, rel=1e-3)
    assert (amp_grads - exact_grads).norm() / exact_grads.norm() < 1e-2
    with torch.no_grad():  # a critic with small weights: its input gradients underflow fp16 unless scaled
        for param in critic.parameters():
            param.mul_(0.03)
    exact, exact_grads = penalty_and_critic_grads(critic, real, fake, eps, None)
    _, amp_grads = penalty_and_critic_grads(critic, real, fake, eps, 2.0**16)
    _, unscaled_grads = penalty_and_critic_grads(critic, real, fake, eps, 1.0)
    # Measured: 2.6e-3 relative error with the recipe, 0.12 without it.
    assert (amp_grads - exact_grads).norm() / exact_grads.norm() < 1e-2
    assert (unscaled_grads - exact_grads).norm() / exact_grads.norm() > 5e-2


class PenaltyRecordingGAN(DCGAN):
    def training_step(self, batch, batch_idx):
        super().training_step(batch, batch_idx)
        self.penalties = getattr(self, "penalties", []) + [self.step_logs["gp"].item()]


def test_wgan_gp_trains_under_16_mixed_with_the_penalty_of_float32() -> None:
    config = {"width_g": 4, "width_d": 4, "latent_dim": 4, "loss": "wasserstein", "gradient_penalty": 10.0,
              "d_norm": "layer", "n_critic": 2}
    torch.manual_seed(0)
    exact = PenaltyRecordingGAN(config, (1, 28, 28))
    torch.manual_seed(0)
    mixed = PenaltyRecordingGAN(config, (1, 28, 28))
    fit(exact, steps=1)
    from lightning.pytorch.plugins.precision import MixedPrecision

    torch.manual_seed(0)
    data = TensorDataset(torch.rand(32, 1, 28, 28) * 2 - 1, torch.arange(32) % 10)
    trainer = L.Trainer(max_steps=4, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        plugins=[MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))])
    trainer.fit(mixed, DataLoader(data, batch_size=8, drop_last=True))
    # Same weights, batch and draws on the first batch: the penalties agree to fp16 precision.
    assert mixed.penalties[0] == pytest.approx(exact.penalties[0], rel=2e-3)
    assert len(mixed.penalties) == 4 and mixed.engine.skipped_steps == 0
    assert all(torch.isfinite(p).all() for p in mixed.parameters())


def test_bf16_mixed_end_to_end() -> None:
    torch.manual_seed(0)
    model = DCGAN({"width_g": 4, "width_d": 4, "latent_dim": 4}, (1, 28, 28))
    before = params(model.generator)
    data = TensorDataset(torch.rand(32, 1, 28, 28) * 2 - 1)
    trainer = L.Trainer(max_steps=3, accelerator="cpu", precision="bf16-mixed", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, DataLoader(data, batch_size=8, drop_last=True))
    assert model.grad_scaler() is None  # bf16 has fp32's range: no loss scaling, nothing for a scaler to skip
    assert trainer.global_step == 3 and model.engine.skipped_steps == 0 and changed(before, model.generator)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # fp32 master weights


class BackwardCounter(L.Callback):
    """A callback on backward and the optimizer step: Lightning's wrappers must then run."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_after_backward(self, trainer, pl_module) -> None:
        self.calls.append("backward")

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.calls.append("step")


def fit_with(model: L.LightningModule, callbacks: list[L.Callback], steps: int = 5) -> L.Trainer:
    torch.manual_seed(0)
    data = TensorDataset(torch.rand(40, 2) * 2 - 1)
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks)
    trainer.fit(model, DataLoader(data, batch_size=8, drop_last=True))
    return trainer


def test_direct_updates_equal_lightnings_wrapped_path_bit_for_bit() -> None:
    """One device, 32-bit, no hook on backward or the step: the engine calls backward and the optimizer itself. The
    result must equal Lightning's path exactly, and every counter (global step, batches) must advance the same; a
    callback on backward brings the wrappers back, and sees every update (7 of 5 batches with G every 2nd)."""
    config = {"hidden_g": [8], "hidden_d": [8], "latent_dim": 2, "n_critic": 2, "grad_clip_d": 0.05}
    direct, wrapped = VanillaGAN(config, (2,)), VanillaGAN(config, (2,))
    wrapped.load_state_dict(direct.state_dict())
    counter = BackwardCounter()
    direct_trainer, wrapped_trainer = fit_with(direct, []), fit_with(wrapped, [counter])
    assert direct.engine._direct and not wrapped.engine._direct
    assert counter.calls == ["backward", "step"] * 7
    assert direct_trainer.global_step == wrapped_trainer.global_step == 5
    assert int(direct.batches_seen) == int(wrapped.batches_seen) == 5
    for a, b in zip(direct.state_dict().values(), wrapped.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    for opt_a, opt_b in zip(direct_trainer.optimizers, wrapped_trainer.optimizers, strict=True):
        assert [s["step"] for s in opt_a.state.values()] == [s["step"] for s in opt_b.state.values()]


class BackwardHookGAN(VanillaGAN):
    def on_after_backward(self) -> None:
        self.backward_calls = getattr(self, "backward_calls", 0) + 1


def test_a_module_hook_on_backward_keeps_the_wrappers() -> None:
    model = BackwardHookGAN({"hidden_g": [8], "hidden_d": [8], "latent_dim": 2}, (2,))
    fit_with(model, [], steps=3)
    assert not model.engine._direct and model.backward_calls == 6


@pytest.mark.parametrize("cls", [VanillaGAN, FusedAdamGAN], ids=["adam", "fused-adam"])
def test_a_non_finite_gradient_under_a_finite_loss_skips_the_update(cls) -> None:
    """The guard checks the gradients, not only the loss: a hook turns D's third gradient into inf while every
    loss stays finite. That update is skipped (D's weights and Adam's step count untouched), the rest run."""
    model = cls({"hidden_g": [8], "hidden_d": [8], "latent_dim": 2}, (2,))
    weight = model.discriminator.body[0].weight
    seen: list[torch.Tensor] = []

    def poison_third(grad: torch.Tensor) -> torch.Tensor:
        seen.append(weight.detach().clone())  # D's weights before this update
        return torch.full_like(grad, float("inf")) if len(seen) == 3 else grad

    weight.register_hook(poison_third)
    trainer = fit_with(model, [], steps=5)
    after_third = weight.detach()
    assert len(seen) == 5 and model.engine.skipped_steps == 1 and model.engine.nonfinite_streak == 0
    assert torch.equal(seen[2], seen[3]) and not torch.equal(seen[1], seen[2])  # batch 3 left D as it was
    assert torch.isfinite(after_third).all()
    opt_d = trainer.optimizers[0]
    assert opt_d.state[weight]["step"] == 4  # 5 batches, one update skipped


def test_the_guards_finite_check_catches_nan_inf_and_their_mixtures() -> None:
    from gan_lightning.engine import all_finite

    finite = [torch.tensor([1.0, -2.0]), torch.full((3, 3), 1e30)]  # large but summable
    assert all_finite(finite)
    assert not all_finite([*finite, torch.tensor([0.0, float("nan")])])
    assert not all_finite([torch.tensor([float("inf"), 1.0])])
    assert not all_finite([torch.tensor([float("inf"), float("-inf")])])  # their sum is NaN: still caught
    assert not all_finite([torch.tensor(float("-inf"), dtype=torch.bfloat16)])
