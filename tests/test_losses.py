"""gan_lightning.losses against hand computations (math.log / closed forms, not the same torch calls)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from gan_lightning import losses

REAL = [2.0, -1.0, 0.5]
FAKE = [-3.0, 1.0]


def s(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def t(xs: list[float]) -> Tensor:
    return torch.tensor(xs, dtype=torch.float64)


# --- minimax family ---------------------------------------------------------------------------------------


def test_d_minimax_matches_hand_formula() -> None:
    expected = -mean([math.log(s(v)) for v in REAL]) - mean([math.log(1 - s(v)) for v in FAKE])
    assert losses.d_minimax(t(REAL), t(FAKE)).item() == pytest.approx(expected, rel=1e-12)


def test_one_sided_label_smoothing_smooths_real_side_only() -> None:
    alpha = 0.9
    real = mean([-alpha * math.log(s(v)) - (1 - alpha) * math.log(1 - s(v)) for v in REAL])
    fake = -mean([math.log(1 - s(v)) for v in FAKE])  # fake target stays 0
    assert losses.d_minimax(t(REAL), t(FAKE), real_target=alpha).item() == pytest.approx(real + fake, rel=1e-12)


def test_generator_losses_match_hand_formulas() -> None:
    saturating = mean([math.log(1 - s(v)) for v in FAKE])
    non_saturating = -mean([math.log(s(v)) for v in FAKE])
    assert losses.g_saturating(t(FAKE)).item() == pytest.approx(saturating, rel=1e-12)
    assert losses.g_non_saturating(t(FAKE)).item() == pytest.approx(non_saturating, rel=1e-12)


def test_saturating_gradient_vanishes_where_non_saturating_does_not() -> None:
    # D confidently rejects the fake (logit -10): d/dl log(1 - s(l)) = -s(l) ~ 0, d/dl -log s(l) = s(l) - 1 ~ -1.
    logit = torch.tensor([-10.0], requires_grad=True)
    (g_sat,) = torch.autograd.grad(losses.g_saturating(logit), logit)
    (g_ns,) = torch.autograd.grad(losses.g_non_saturating(logit), logit)
    assert g_sat.item() == pytest.approx(-s(-10.0), rel=1e-5)
    assert g_ns.item() == pytest.approx(s(-10.0) - 1.0, rel=1e-5)


@pytest.mark.parametrize("logit", [100.0, -100.0])
def test_logit_losses_stay_finite_at_extreme_logits(logit: float) -> None:
    x = torch.full((4,), logit, requires_grad=True)  # float32: sigmoid(+-100) is exactly 1 / 0 here
    for value in (losses.d_minimax(x, x), losses.d_minimax(x, x, real_target=0.9),
                  losses.g_saturating(x), losses.g_non_saturating(x)):
        (grad,) = torch.autograd.grad(value, x)
        assert torch.isfinite(value) and torch.isfinite(grad).all()
    # and the values are the exact asymptotes: -log s(100) ~ 0, -log(1 - s(100)) ~ 100
    assert losses.g_non_saturating(x).item() == pytest.approx(max(-logit, 0.0), abs=1e-6)


# --- Wasserstein, hinge, least squares --------------------------------------------------------------------


def test_wasserstein_values() -> None:
    assert losses.d_wasserstein(t(REAL), t(FAKE)).item() == pytest.approx(mean(FAKE) - mean(REAL))
    assert losses.g_wasserstein(t(FAKE)).item() == pytest.approx(-mean(FAKE))


def test_hinge_values() -> None:
    # real: relu(1-2)=0, relu(1+1)=2, relu(0.5)=0.5 -> 2.5/3; fake: relu(1-3)=0, relu(2)=2 -> 1
    assert losses.d_hinge(t(REAL), t(FAKE)).item() == pytest.approx(2.5 / 3 + 1.0)
    assert losses.g_hinge(t(FAKE)).item() == pytest.approx(1.0)


def test_least_squares_values() -> None:
    # real: (1, 4, 0.25) -> mean 1.75; fake: (9, 1) -> mean 5
    assert losses.d_least_squares(t(REAL), t(FAKE)).item() == pytest.approx(0.5 * 1.75 + 0.5 * 5.0)
    smoothed = mean([(v - 0.9) ** 2 for v in REAL])
    assert losses.d_least_squares(t(REAL), t(FAKE), real_target=0.9).item() == pytest.approx(0.5 * smoothed + 2.5)
    assert losses.g_least_squares(t(FAKE)).item() == pytest.approx(0.5 * mean([16.0, 0.0]))


def test_loss_families_pair_the_right_functions() -> None:
    assert losses.LOSS_FAMILIES["non_saturating"] == (losses.d_minimax, losses.g_non_saturating)
    assert losses.LOSS_FAMILIES["minimax"] == (losses.d_minimax, losses.g_saturating)
    assert losses.LOSS_FAMILIES["wasserstein"] == (losses.d_wasserstein, losses.g_wasserstein)
    assert losses.LOSS_FAMILIES["hinge"] == (losses.d_hinge, losses.g_hinge)
    assert losses.LOSS_FAMILIES["least_squares"] == (losses.d_least_squares, losses.g_least_squares)


# --- gradient penalty: a linear critic C(x) = w.x + b has input gradient w everywhere -----------------------


class LinearCritic(nn.Module):
    def __init__(self, shape: tuple[int, ...], seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(shape, generator=g, dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor(0.3, dtype=torch.float64))

    def forward(self, x: Tensor) -> Tensor:
        return (x * self.w).flatten(1).sum(1) + self.b


@pytest.mark.parametrize("shape", [(1, 4, 4), (3, 4, 4), (2,)], ids=["1ch", "3ch", "points"])
def test_gradient_penalty_of_linear_critic(shape: tuple[int, ...]) -> None:
    critic = LinearCritic(shape, seed=len(shape) + shape[0])
    real = torch.randn(5, *shape, dtype=torch.float64)
    fake = torch.randn(5, *shape, dtype=torch.float64)
    norm = critic.w.detach().norm().item()
    gp = losses.gradient_penalty(critic, real, fake)
    assert gp.item() == pytest.approx((norm - 1.0) ** 2, rel=1e-10)
    eps = torch.rand(5, *(1,) * len(shape), dtype=torch.float64)  # explicit eps: same answer anywhere
    assert losses.gradient_penalty(critic, real, fake, epsilon=eps).item() == pytest.approx((norm - 1.0) ** 2)
    assert losses.gradient_penalty(critic, real, fake, target_norm=0.0).item() == pytest.approx(norm**2)


def test_gradient_penalty_is_differentiable_wrt_critic_weights() -> None:
    critic = LinearCritic((3, 4, 4), seed=1)
    real, fake = torch.randn(4, 3, 4, 4, dtype=torch.float64), torch.randn(4, 3, 4, 4, dtype=torch.float64)
    losses.gradient_penalty(critic, real, fake).backward()
    w = critic.w.detach()
    assert critic.w.grad is not None
    torch.testing.assert_close(critic.w.grad, 2 * (w.norm() - 1) * w / w.norm())
    assert critic.b.grad is None or critic.b.grad.abs().item() == 0.0  # b does not move the gradient


def test_gradient_penalty_rejects_mismatched_shapes() -> None:
    critic = LinearCritic((2,), seed=0)
    with pytest.raises(ValueError, match="differ"):
        losses.gradient_penalty(critic, torch.randn(4, 2), torch.randn(3, 2))


# --- auxiliary losses -------------------------------------------------------------------------------------


def test_feature_matching_is_squared_distance_of_feature_means() -> None:
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # mean (2, 3)
    fake = torch.tensor([[0.0, 0.0], [0.0, 2.0], [3.0, 1.0]])  # mean (1, 1)
    assert losses.feature_matching(real, fake).item() == pytest.approx(1.0 + 4.0)
    # conv features are flattened per sample: same answer for a (N, C, H, W) view
    assert losses.feature_matching(real.view(2, 2, 1, 1), fake.view(3, 2, 1, 1)).item() == pytest.approx(5.0)


def test_cycle_consistency_is_mean_l1() -> None:
    rec, orig = torch.tensor([[0.5, -1.0], [2.0, 0.0]]), torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    assert losses.cycle_consistency(rec, orig).item() == pytest.approx((0.5 + 2.0 + 0.0 + 1.0) / 4)


def test_historical_average() -> None:
    params = [torch.tensor([1.0, 2.0]), torch.tensor([[3.0]])]
    averages = [torch.tensor([0.0, 0.0]), torch.tensor([[1.0]])]
    assert losses.historical_average(params, averages).item() == pytest.approx(1.0 + 4.0 + 4.0)
    with pytest.raises(ValueError):  # a missing average is a bug in the caller, not silently ignored
        losses.historical_average(params, averages[:1])


# --- super-resolution ---------------------------------------------------------------------------------------


def test_relativistic_average_losses_match_hand_formula() -> None:
    real_mean, fake_mean = mean(REAL), mean(FAKE)
    d = -mean([math.log(s(r - fake_mean)) for r in REAL]) - mean([math.log(1 - s(f - real_mean)) for f in FAKE])
    g = -mean([math.log(1 - s(r - fake_mean)) for r in REAL]) - mean([math.log(s(f - real_mean)) for f in FAKE])
    assert losses.d_relativistic_average(t(REAL), t(FAKE)).item() == pytest.approx(d, rel=1e-12)
    assert losses.g_relativistic_average(t(REAL), t(FAKE)).item() == pytest.approx(g, rel=1e-12)


def test_content_loss_mse_scaled_as_srgan_and_l1() -> None:
    a, b = t([1.0, 2.0, -1.0, 0.5]), t([0.0, 2.5, 1.0, 0.5])
    squares = [1.0, 0.25, 4.0, 0.0]
    assert losses.content_loss(a, b).item() == pytest.approx(mean(squares) / 12.75, rel=1e-12)
    assert losses.content_loss(a, b, "l1", scale=1.0).item() == pytest.approx(mean([1.0, 0.5, 2.0, 0.0]), rel=1e-12)
    with pytest.raises(ValueError, match="huber"):
        losses.content_loss(a, b, "huber")
