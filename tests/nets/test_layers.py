"""gan_lightning.nets.layers: minibatch discrimination, virtual batch norm, spectral norm helper, packing."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import Tensor, nn

from gan_lightning.nets.layers import (
    MinibatchDiscrimination,
    VirtualBatchNorm,
    forward_with_reference,
    pack_samples,
    reference_batch,
    spectral_norm_all,
)

# --- minibatch discrimination -----------------------------------------------------------------------------


def test_minibatch_discrimination_separates_collapsed_from_diverse_batches() -> None:
    torch.manual_seed(0)
    mbd = MinibatchDiscrimination(in_features=6, num_kernels=4, kernel_dim=3)
    n = 5
    identical = torch.randn(1, 6).expand(n, 6)
    out = mbd(identical)
    assert out.shape == (n, 6 + 4)
    torch.testing.assert_close(out[:, :6], identical)  # input passes through unchanged
    torch.testing.assert_close(out[:, 6:], torch.full((n, 4), float(n - 1)))  # (N-1) * exp(0)
    diverse = 100.0 * torch.eye(n, 6)  # rows far apart -> every exp(-L1) ~ 0
    assert out.shape == mbd(diverse).shape
    assert mbd(diverse)[:, 6:].abs().max().item() < 1e-6


def test_minibatch_discrimination_matches_the_formula_and_is_differentiable() -> None:
    torch.manual_seed(1)
    mbd = MinibatchDiscrimination(3, num_kernels=2, kernel_dim=2)
    x = torch.randn(4, 3, requires_grad=True)
    m = (x @ mbd.T).view(4, 2, 2)
    expected = torch.stack([
        torch.stack([sum(torch.exp(-(m[i, b] - m[j, b]).abs().sum()) for j in range(4) if j != i)
                     for b in range(2)])
        for i in range(4)
    ])
    out = mbd(x)
    torch.testing.assert_close(out[:, 3:], expected)
    out.sum().backward()
    assert mbd.T.grad is not None and torch.isfinite(mbd.T.grad).all()
    with pytest.raises(ValueError, match="expects"):
        mbd(torch.randn(4, 5))


# --- virtual batch norm -----------------------------------------------------------------------------------


def bn_by_hand(x: Tensor, ref: Tensor, eps: float) -> Tensor:
    """Normalise each row of x (N, C) with the stats of ref ∪ {x_i}, written as an explicit union."""
    rows = []
    for xi in x:
        union = torch.cat([ref, xi[None]])
        rows.append((xi - union.mean(0)) / torch.sqrt(union.var(0, unbiased=False) + eps))
    return torch.stack(rows)


def test_vbn_reference_batch_is_batch_normalised_by_itself() -> None:
    torch.manual_seed(0)
    ref = 3.0 + 2.0 * torch.randn(8, 4)
    vbn = VirtualBatchNorm(4, eps=1e-5)
    out = vbn.set_reference(ref)
    expected = (ref - ref.mean(0)) / torch.sqrt(ref.var(0, unbiased=False) + 1e-5)
    torch.testing.assert_close(out, expected)
    assert int(vbn.ref_size) == 8


def test_vbn_new_example_uses_reference_union_itself() -> None:
    torch.manual_seed(0)
    ref, x = torch.randn(6, 3), torch.randn(5, 3) * 4.0 + 1.0
    vbn = VirtualBatchNorm(3, eps=1e-5)
    vbn.set_reference(ref)
    torch.testing.assert_close(vbn(x), bn_by_hand(x, ref, 1e-5))


def test_vbn_4d_matches_union_of_pixels() -> None:
    torch.manual_seed(0)
    ref, x = torch.randn(3, 2, 4, 4), torch.randn(2, 2, 4, 4)
    vbn = VirtualBatchNorm(2, eps=1e-5)
    vbn.set_reference(ref)
    out = vbn(x)
    for i in range(2):  # per channel, the pixels of the reference batch plus the pixels of x_i
        for c in range(2):
            union = torch.cat([ref[:, c].flatten(), x[i, c].flatten()])
            expected = (x[i, c] - union.mean()) / torch.sqrt(union.var(unbiased=False) + 1e-5)
            torch.testing.assert_close(out[i, c], expected)


@pytest.mark.parametrize("shape", [(4,), (4, 3, 3)], ids=["2d", "4d"])
def test_vbn_output_does_not_depend_on_the_rest_of_the_batch(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    vbn = VirtualBatchNorm(4)
    vbn.set_reference(torch.randn(16, *shape))
    with torch.no_grad():
        vbn.weight.uniform_(0.5, 2.0)
        vbn.bias.uniform_(-1.0, 1.0)
    xi = torch.randn(1, *shape)
    batch_a = torch.cat([xi, torch.randn(3, *shape)])
    batch_b = torch.cat([10.0 * torch.randn(7, *shape), xi])
    torch.testing.assert_close(vbn(batch_a)[0], vbn(batch_b)[-1])
    torch.testing.assert_close(vbn(batch_a)[0], vbn(xi)[0])
    # ordinary batch norm fails this, which is why VBN exists
    bn = nn.BatchNorm1d(4) if len(shape) == 1 else nn.BatchNorm2d(4)
    assert not torch.allclose(bn(batch_a)[0], bn(batch_b)[-1])


def test_vbn_first_forward_becomes_the_reference() -> None:
    torch.manual_seed(0)
    first, later = torch.randn(8, 3), torch.randn(4, 3)
    vbn = VirtualBatchNorm(3, eps=1e-5)
    vbn(first)
    torch.testing.assert_close(vbn(later), bn_by_hand(later, first, 1e-5))


def make_vbn_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), VirtualBatchNorm(4), nn.ReLU(), nn.Linear(4, 4), VirtualBatchNorm(4))


def test_reference_batch_flows_through_preceding_layers_with_gradients() -> None:
    net = make_vbn_net()
    ref_z, z = torch.randn(10, 3), torch.randn(5, 3)
    out = forward_with_reference(net, z, ref_z)
    # by hand: first VBN's reference stats come from Linear(ref_z), the second's from the first block's output
    h_ref, h = net[0](ref_z), net[0](z)
    h_ref, h = net[2](net[1].set_reference(h_ref)), net[2](bn_by_hand(h, h_ref, net[1].eps))
    h_ref, h = net[3](h_ref), net[3](h)
    torch.testing.assert_close(out, bn_by_hand(h, h_ref, net[4].eps))
    # the reference statistics are live: the first layer's weights get gradient through them too
    out.sum().backward()
    assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0
    # after the block the layers hold detached stats: plain net(z) gives the same numbers, deepcopy works (EMA)
    torch.testing.assert_close(net(z), out.detach())
    torch.testing.assert_close(copy.deepcopy(net)(z), out.detach())
    assert all(m._live is None and not m._recording for m in net if isinstance(m, VirtualBatchNorm))


def test_vbn_reference_survives_state_dict_round_trip() -> None:
    net, ref_z, z = make_vbn_net(), torch.randn(10, 3), torch.randn(5, 3)
    with reference_batch(net):
        net(ref_z)
        expected = net(z).detach()
    fresh = make_vbn_net()
    fresh.load_state_dict(net.state_dict())
    torch.testing.assert_close(fresh(z), expected)  # not re-referenced on z by the first-forward rule


# --- spectral norm ----------------------------------------------------------------------------------------


def test_spectral_norm_all_bounds_every_weight() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.ConvTranspose2d(8, 4, 4), nn.Flatten(),
                        nn.Linear(4 * 9 * 9, 1), nn.BatchNorm1d(1))
    with torch.no_grad():
        for m in net:
            if hasattr(m, "weight") and m.weight is not None and m.weight.dim() > 1:
                m.weight.mul_(5.0)  # start far from sigma = 1
    assert spectral_norm_all(net) is net
    spectral_norm_all(net)  # idempotent: no double parametrisation
    assert len(net[0].parametrizations.weight) == 1
    assert not hasattr(net[5], "parametrizations")  # norms are not touched
    x = torch.randn(2, 3, 8, 8)
    for _ in range(5):  # a few training forwards = a few power iterations
        net(x)
    net.eval()
    for m, dim in ((net[0], 0), (net[2], 1), (net[4], 0)):
        w = m.weight.detach().movedim(dim, 0).flatten(1)  # the matrix spectral_norm normalises
        assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=1e-3)


# --- packing ----------------------------------------------------------------------------------------------


def test_pack_samples_shape_and_order() -> None:
    x = torch.arange(6 * 2 * 1 * 1, dtype=torch.float32).view(6, 2, 1, 1)
    packed = pack_samples(x, 3)
    assert packed.shape == (2, 6, 1, 1)
    # pack k holds samples 3k, 3k+1, 3k+2, each with its own channels in order
    torch.testing.assert_close(packed[1], torch.cat([x[3], x[4], x[5]]))
    points = torch.randn(8, 2)
    assert pack_samples(points, 2).shape == (4, 4)
    torch.testing.assert_close(pack_samples(points, 2)[0], torch.cat([points[0], points[1]]))
    assert pack_samples(points, 1) is not None and torch.equal(pack_samples(points, 1), points)


@pytest.mark.parametrize("n, m, message", [(5, 2, "not divisible"), (4, 0, ">= 1")])
def test_pack_samples_rejects_bad_sizes(n: int, m: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pack_samples(torch.randn(n, 3), m)


def test_packed_discriminator_input_channels_scale_by_m() -> None:
    m, c = 4, 3
    d = nn.Conv2d(m * c, 8, 3)  # in_channels = m * C
    assert d(pack_samples(torch.randn(8, c, 5, 5), m)).shape == (2, 8, 3, 3)
    assert math.prod(pack_samples(torch.randn(8, c, 5, 5), m).shape) == 8 * c * 25
