"""Pure GAN loss functions.

Everything here takes tensors and returns tensors: no Lightning, no model classes, so each formula can be
checked against a hand computation. Discriminator outputs are *logits* (or raw critic values for the
Wasserstein family); probabilities are never formed explicitly because log(sigmoid(x)) computed through
BCE-with-logits stays finite where Sigmoid followed by BCE saturates (the seeds' stability advice).

Naming: ``d_*`` functions are minimised by the discriminator/critic, ``g_*`` by the generator.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

# --- Goodfellow et al. 2014: the minimax game on logits --------------------------------------------------


def d_minimax(real_logits: Tensor, fake_logits: Tensor, real_target: float = 1.0) -> Tensor:
    """J(D) = -mean log D(x) - mean log(1 - D(G(z))).

    ``real_target`` < 1 is one-sided label smoothing (Salimans et al. 2016): real samples get target alpha,
    fakes keep target 0 (smoothing the fake side would reward G for staying put).
    """
    real_loss = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_target))
    fake_loss = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real_loss + fake_loss


def g_saturating(fake_logits: Tensor) -> Tensor:
    """The original minimax generator objective, mean log(1 - D(G(z))) (minimised by G).

    log(1 - sigmoid(l)) = -softplus(l). Its gradient vanishes when D confidently rejects fakes, which is why
    the non-saturating form is the default.
    """
    return -F.softplus(fake_logits).mean()


def g_non_saturating(fake_logits: Tensor) -> Tensor:
    """-mean log D(G(z)): same fixed point as the minimax game, strong gradients early on ("Trick 1")."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


# --- Wasserstein (Arjovsky et al. 2017) -------------------------------------------------------------------


def d_wasserstein(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """L_C = mean C(G(z)) - mean C(x): the negated Kantorovich-Rubinstein estimate the critic maximises."""
    return fake_scores.mean() - real_scores.mean()


def g_wasserstein(fake_scores: Tensor) -> Tensor:
    """L_G = -mean C(G(z))."""
    return -fake_scores.mean()


# --- Hinge (Lim & Ye 2017; Miyato et al. 2018 for SNGAN) ---------------------------------------------------


def d_hinge(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """mean relu(1 - D(x)) + mean relu(1 + D(G(z)))."""
    return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()


def g_hinge(fake_scores: Tensor) -> Tensor:
    """-mean D(G(z)), the generator side of the hinge game."""
    return -fake_scores.mean()


# --- Least squares (Mao et al. 2017; the CycleGAN reference's adversarial loss) ---------------------------


def d_least_squares(real_scores: Tensor, fake_scores: Tensor, real_target: float = 1.0) -> Tensor:
    """0.5 * mean (D(x) - a)^2 + 0.5 * mean D(G(z))^2 with a = 1 (or alpha with label smoothing)."""
    return 0.5 * ((real_scores - real_target) ** 2).mean() + 0.5 * (fake_scores**2).mean()


def g_least_squares(fake_scores: Tensor) -> Tensor:
    """0.5 * mean (D(G(z)) - 1)^2."""
    return 0.5 * ((fake_scores - 1.0) ** 2).mean()


# --- Regularisers and auxiliary losses --------------------------------------------------------------------


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, epsilon: Tensor | None = None,
                     target_norm: float = 1.0, output_scale: float | Tensor = 1.0) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): mean (||grad_x C(x_hat)||_2 - 1)^2 at x_hat = eps*x + (1-eps)*G(z).

    Works for any sample shape: one eps per sample, broadcast over every non-batch dimension, and the norm
    is taken over all of them (not just 3 image channels). ``epsilon`` can be passed for reproducible tests.
    ``create_graph=True`` so the penalty itself is differentiated w.r.t. the critic's weights.
    Returns the penalty *without* the lambda factor.

    Under fp16 autocast pass the GradScaler's scale as ``output_scale`` (PyTorch's AMP gradient-penalty recipe):
    the critic's outputs are scaled (by scale / N, as the scaled loss's backward seeds them) before ``autograd.grad``
    so its fp16 backward does not underflow, and the input gradients are unscaled (in fp32) before the norm.
    """
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} differ")
    per_sample = (real.shape[0],) + (1,) * (real.dim() - 1)
    if epsilon is None:
        epsilon = torch.rand(per_sample, device=real.device, dtype=real.dtype)
    epsilon = epsilon.reshape(per_sample)  # one mixing weight per sample, never per feature
    interpolates = (epsilon * real.detach() + (1 - epsilon) * fake.detach()).requires_grad_(True)
    scores = critic(interpolates)
    # Seeded like the scaled loss's backward (scale / N per output, N = batch): scale x 1 per output overflows fp16.
    scaled = isinstance(output_scale, Tensor) or output_scale != 1.0
    seed = (output_scale / scores.numel()).reshape(()) if torch.is_tensor(output_scale) else (
        output_scale / scores.numel() if scaled else 1.0)
    (grads,) = torch.autograd.grad(scores.sum() * seed, interpolates, create_graph=True)
    grads = grads.to(torch.promote_types(grads.dtype, torch.float32)) / seed  # >= fp32 under AMP
    norms = grads.flatten(1).norm(2, dim=1)
    return ((norms - target_norm) ** 2).mean()


def feature_matching(real_features: Tensor, fake_features: Tensor) -> Tensor:
    """Salimans et al. 2016: ||mean f(x) - mean f(G(z))||_2^2 over an intermediate D feature f."""
    return (real_features.flatten(1).mean(0) - fake_features.flatten(1).mean(0)).pow(2).sum()


def cycle_consistency(reconstructed: Tensor, original: Tensor) -> Tensor:
    """CycleGAN's L1 cycle term for one direction, mean |F(G(x)) - x| (lambda applied by the caller)."""
    return (reconstructed - original).abs().mean()


def historical_average(parameters: list[Tensor], averages: list[Tensor]) -> Tensor:
    """Salimans et al. 2016: sum_i ||theta_i - mean of past theta_i||^2 (averages held by the caller)."""
    total = torch.zeros((), device=parameters[0].device if parameters else None)
    for param, average in zip(parameters, averages, strict=True):
        total = total + ((param - average) ** 2).sum()
    return total


# --- Super-resolution (Ledig et al. 2017, SRGAN; Wang et al. 2018, ESRGAN) ------------------------------------


def d_relativistic_average(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """ESRGAN's relativistic average D (Jolicoeur-Martineau 2018): D_Ra(a, b) = sigmoid(C(a) - mean C(b)),
    L_D = -mean log D_Ra(x_r, x_f) - mean log(1 - D_Ra(x_f, x_r)), on logits through BCE-with-logits."""
    real_vs_fake = real_logits - fake_logits.mean()
    fake_vs_real = fake_logits - real_logits.mean()
    return (F.binary_cross_entropy_with_logits(real_vs_fake, torch.ones_like(real_vs_fake))
            + F.binary_cross_entropy_with_logits(fake_vs_real, torch.zeros_like(fake_vs_real)))


def g_relativistic_average(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The generator's side, symmetric: -mean log(1 - D_Ra(x_r, x_f)) - mean log D_Ra(x_f, x_r). G gets gradients
    from the real images' term too (through mean C(x_f)), unlike the standard GAN loss."""
    return d_relativistic_average(fake_logits, real_logits)


# SRGAN rescales the VGG content loss by 1/12.75 so that it is of the order of the pixel MSE.
SRGAN_CONTENT_SCALE = 1 / 12.75


def content_loss(sr_features: Tensor, hr_features: Tensor, criterion: str = "mse",
                 scale: float = SRGAN_CONTENT_SCALE) -> Tensor:
    """``scale`` x the mean squared (``mse``, SRGAN) or absolute (``l1``, ESRGAN, with scale 1) difference of two
    feature maps (VGG features, or the images themselves for a pixel loss)."""
    if criterion == "mse":
        return scale * F.mse_loss(sr_features, hr_features)
    if criterion == "l1":
        return scale * F.l1_loss(sr_features, hr_features)
    raise ValueError(f"content_loss: criterion {criterion!r} is not mse or l1")


# name -> (discriminator loss, generator loss). Used by configs (``model.loss``) and validated there.
LOSS_FAMILIES: dict[str, tuple[Callable[..., Tensor], Callable[[Tensor], Tensor]]] = {
    "minimax": (d_minimax, g_saturating),
    "saturating": (d_minimax, g_saturating),  # the same game, named after its generator loss
    "non_saturating": (d_minimax, g_non_saturating),
    "wasserstein": (d_wasserstein, g_wasserstein),
    "hinge": (d_hinge, g_hinge),
    "least_squares": (d_least_squares, g_least_squares),
}
# Families whose D output is a logit, so that sigmoid(D) is D's probability of "real".
LOGIT_LOSSES = frozenset({"minimax", "saturating", "non_saturating"})
# Families with a real-sample target that one-sided label smoothing can lower (their D loss takes real_target).
SMOOTHABLE_LOSSES = LOGIT_LOSSES | {"least_squares"}
