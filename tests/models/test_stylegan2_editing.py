"""StyleGAN2 sampling and editing on tiny nets: truncation (psi and cut-off), noise modes, style-mixing grids (the
per-layer ws the synthesis network receives), W interpolation, and the one-line refusals of models without them."""

from __future__ import annotations

import pytest
import torch

from gan_lightning.errors import GanLightningError
from gan_lightning.models import DCGAN, StyleGAN2
from gan_lightning.nets import stylegan2 as nets

TINY = {"latent_dim": 8, "w_dim": 8, "channel_base": 64, "channel_max": 8, "mapping_layers": 1}

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def tiny(size: int = 16, noise_strength: float = 0.0) -> StyleGAN2:
    torch.manual_seed(0)
    model = StyleGAN2(TINY, (1, size, size)).eval()
    with torch.no_grad():
        model.sampling_generator.w_avg.copy_(torch.randn(8))  # an untrained model's average is 0: make it tell
        for layer in model.sampling_generator.modules():
            if isinstance(layer, nets.ModulatedConv):
                layer.noise_strength.fill_(noise_strength)
    return model


def synthesis_inputs(model: StyleGAN2) -> tuple[list[torch.Tensor], object]:
    """The ws every synthesis call receives (recorded by a forward pre-hook)."""
    seen: list[torch.Tensor] = []
    handle = model.sampling_generator.synthesis.register_forward_pre_hook(lambda _, args: seen.append(args[0].clone()))
    return seen, handle


def test_truncation_zero_gives_the_w_avg_image_and_one_the_plain_image() -> None:
    model = tiny(noise_strength=0.3)
    z = torch.randn(5, 8)
    at_zero = model.generate(z, truncation=0.0, noise="const")
    average = model.synthesize(model.sampling_generator.w_avg.expand(1, model.num_ws, -1), noise="const")
    torch.testing.assert_close(at_zero, average.expand_as(at_zero))
    g = model.sampling_generator
    plain = g.synthesis(g.mapping(z).unsqueeze(1).repeat(1, model.num_ws, 1), "const")
    torch.testing.assert_close(model.generate(z, truncation=1.0, noise="const"), plain)


def test_truncation_cutoff_pulls_only_the_first_layers() -> None:
    model = tiny()
    z = torch.randn(3, 8)
    w = model.sampling_generator.mapping(z).detach()
    ws = model.sampling_ws(z, truncation=0.25, truncation_cutoff=2)
    expected_head = model.sampling_generator.w_avg + 0.25 * (w - model.sampling_generator.w_avg)
    torch.testing.assert_close(ws[:, :2], expected_head.unsqueeze(1).expand(-1, 2, -1))
    torch.testing.assert_close(ws[:, 2:], w.unsqueeze(1).expand(-1, model.num_ws - 2, -1))
    with pytest.raises(GanLightningError, match=r"cutoff must be in \[1, 6\]"):
        model.generate(z, truncation=0.5, truncation_cutoff=7)


def test_const_noise_is_reproducible_and_random_noise_is_not() -> None:
    model = tiny(noise_strength=0.5)
    z = torch.randn(4, 8)
    assert torch.equal(model.generate(z, noise="const"), model.generate(z, noise="const"))
    first, second = model.generate(z, noise="random"), model.generate(z, noise="random")
    assert (first - second).abs().max() > 1e-3


def test_style_mix_cells_take_the_row_source_ws_on_the_chosen_layers() -> None:
    model = tiny(size=32)  # 4 resolutions, 8 ws: coarse 0-3 (4-8 px), middle 4-5 (16), fine 6-7 (32)
    assert model.style_bands() == {"coarse": [0, 1, 2, 3], "middle": [4, 5], "fine": [6, 7]}
    rows, cols = torch.randn(2, 8), torch.randn(3, 8)
    w_rows, w_cols = model.sampling_generator.mapping(rows).detach(), model.sampling_generator.mapping(cols).detach()
    seen, handle = synthesis_inputs(model)
    grid = model.style_mix(rows, cols, "coarse")
    handle.remove()
    assert grid.shape == (3 * 4, 1, 32, 32)
    (ws,) = seen  # one synthesis call: the column sources, the row sources, then the cells row by row
    cells = ws[3 + 2 :].reshape(2, 3, 8, 8)
    for r in range(2):
        for c in range(3):
            torch.testing.assert_close(cells[r, c, :4], w_rows[r].expand(4, -1))  # before the cut-off: row source
            torch.testing.assert_close(cells[r, c, 4:], w_cols[c].expand(4, -1))  # after it: column source
    # The figure: grey corner, column sources on top, row sources on the left, cells = synthesis of those ws.
    assert torch.equal(grid[0], torch.zeros_like(grid[0]))
    torch.testing.assert_close(grid[1:4], model.generate(cols, noise="const"))
    torch.testing.assert_close(grid[4], model.generate(rows[:1], noise="const")[0])
    torch.testing.assert_close(grid[5:8], model.synthesize(cells[0], noise="const"))


def test_mixing_layer_specs_and_the_paper_bands_at_64_px_and_up() -> None:
    model = tiny(size=32)
    assert model.mixing_layers("middle,fine") == [4, 5, 6, 7]
    assert model.mixing_layers("2-4") == [2, 3, 4]
    assert model.mixing_layers("7") == [7]
    for bad, message in (("8", "run 0-7"), ("3-1", "A <= B"), ("hair", "coarse, middle, fine")):
        with pytest.raises(GanLightningError, match=message):
            model.mixing_layers(bad)
    torch.manual_seed(0)
    big = StyleGAN2({**TINY, "channel_base": 128}, (1, 128, 128))  # 4..128 px: 6 resolutions, 12 ws
    assert big.style_bands() == {"coarse": [0, 1, 2, 3], "middle": [4, 5, 6, 7], "fine": [8, 9, 10, 11]}
    torch.manual_seed(0)
    small = StyleGAN2(TINY, (1, 8, 8))  # 2 resolutions: no fine band
    with pytest.raises(GanLightningError, match="no fine layers"):
        small.mixing_layers("fine")


def test_interpolation_is_linear_in_w_for_stylegan2() -> None:
    model = tiny()
    starts, ends = torch.randn(2, 8), torch.randn(2, 8)
    seen, handle = synthesis_inputs(model)
    images = model.interpolate(starts, ends, 5, noise="const")
    handle.remove()
    assert images.shape == (10, 1, 16, 16)
    w0, w1 = model.sampling_generator.mapping(starts).detach(), model.sampling_generator.mapping(ends).detach()
    ws = seen[0].reshape(2, 5, model.num_ws, 8)
    for k, t in enumerate(torch.linspace(0, 1, 5)):
        torch.testing.assert_close(ws[:, k], (w0 + t * (w1 - w0)).unsqueeze(1).expand(-1, model.num_ws, -1))


def test_models_without_a_mapping_network_refuse_truncation_and_noise_in_one_line() -> None:
    torch.manual_seed(0)
    model = DCGAN({"latent_dim": 8, "width_g": 8, "width_d": 8}, (1, 28, 28)).eval()
    z = torch.randn(2, 8)
    with pytest.raises(GanLightningError, match="dcgan tracks no average latent"):
        model.generate(z, truncation=0.7)
    with pytest.raises(GanLightningError, match="no noise inputs"):
        model.generate(z, noise="const")
    with pytest.raises(GanLightningError, match="W\\+ is a mapping network's space"):
        model.projection_space(w_plus=True)
    torch.testing.assert_close(model.interpolate(z[:1], z[1:], 3)[[0, 2]], model.generate(z))  # Z: the endpoints
