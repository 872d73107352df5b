"""LPIPS v0.1 (net 'vgg') with learned weights: equal to the lpips package's values, zero on identical images, the
learned weights applied per channel, full-size comparison, and one-line refusals of wrong weight files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from gan_lightning.errors import GanLightningError
from gan_lightning.metrics.perceptual import (
    LPIPS_SCALE,
    LPIPS_SHIFT,
    VGG16Distance,
    load_vgg16_features,
    lpips_vgg,
    vgg16_distance,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from check_lpips import reference_pairs, seeded_lpips_state, seeded_vgg16_state  # noqa: E402

# The lpips package's LPIPS(net='vgg') (lpips 0.1.4, torch 2.14.1 CPU) on reference_pairs() with the seeded weights
# loaded into it, printed by `python benchmarks/check_lpips.py` (which also checks ours against the package there).
REFERENCE = {
    "rgb_32": (0.3241158425807953, 0.32074078917503357),
    "rgb_64x48": (0.03258449211716652, 0.0331270806491375),
    "grey_32": (0.5284419655799866, 0.5160566568374634),
    "grey_64x48": (0.17876069247722626, 0.17527346312999725),
}


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("lpips")
    torch.save(seeded_vgg16_state(), folder / "vgg16.pth")
    torch.save(seeded_lpips_state(), folder / "lpips_vgg.pth")
    return folder / "vgg16.pth", folder / "lpips_vgg.pth"


@pytest.fixture(scope="module")
def lpips(weight_files):
    return lpips_vgg(*weight_files)


def test_lpips_equals_the_packages_values(lpips) -> None:
    with torch.no_grad():
        for name, (x, y) in reference_pairs().items():
            ours = lpips(x, y)
            assert ours.shape == (2,)
            torch.testing.assert_close(ours, torch.tensor(REFERENCE[name]), rtol=0, atol=1e-6, msg=name)
            # per image: the second image's value does not depend on the first
            torch.testing.assert_close(lpips(x[1:], y[1:]), ours[1:], rtol=0, atol=1e-6)


def test_identical_images_are_exactly_zero_and_grey_is_rgb_repeated(lpips) -> None:
    x, y = reference_pairs()["grey_64x48"]
    with torch.no_grad():
        assert torch.equal(lpips(x, x), torch.zeros(2))
        assert torch.equal(lpips(x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)), lpips(x, y))
        assert (lpips(x, y) > 0).all()


def test_learned_weights_weight_each_channel_of_each_tap(weight_files) -> None:
    """One non-zero weight (tap relu2_2, channel 5, value 0.7): LPIPS is 0.7 x the spatial mean of that channel's
    squared difference of unit-normalised features, computed here from the VGG layers by hand."""
    vgg_path, _ = weight_files
    features = load_vgg16_features(vgg_path)
    weights = [torch.zeros(1, c, 1, 1) for c in (64, 128, 256, 512, 512)]
    weights[1][0, 5] = 0.7
    distance = VGG16Distance("one-channel", features, weights, max_side=None)
    x, y = reference_pairs()["rgb_32"]
    with torch.no_grad():
        taps = []
        for image in (x, y):
            h = (image - torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1)) / torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1)
            h = features[:9](h)  # up to relu2_2
            taps.append(h / (h.square().sum(1, keepdim=True).sqrt() + 1e-10))
        expected = 0.7 * (taps[0][:, 5] - taps[1][:, 5]).square().mean(dim=(1, 2))
        torch.testing.assert_close(distance(x, y), expected, rtol=1e-6, atol=1e-9)
        # all-ones weights are the baseline variant (the plain sum over channels)
        ones = VGG16Distance("ones", features, [torch.ones(1, c, 1, 1) for c in (64, 128, 256, 512, 512)], None)
        torch.testing.assert_close(ones(x, y), VGG16Distance("baseline", features, None, None)(x, y), rtol=1e-5,
                                   atol=0)


def test_lpips_compares_at_full_size_where_projection_caps_at_256(weight_files, lpips) -> None:
    image = torch.zeros(1, 3, 300, 260)
    assert lpips.preprocess(image).shape[-2:] == (300, 260)
    assert vgg16_distance(*weight_files).preprocess(image).shape[-2:] == (256, 256)
    assert vgg16_distance(weight_files[0]).name == "vgg16-lpips"  # without the learned file: the baseline
    assert not vgg16_distance(weight_files[0]).learned and vgg16_distance(*weight_files).learned
    with pytest.raises(ValueError, match="LPIPS/VGG16 needs images of at least 16x16 pixels .* got 15x40"):
        lpips(torch.zeros(1, 3, 15, 40), torch.zeros(1, 3, 15, 40))  # relu5_3 would pool a side of 15 to nothing


def _one_line_error(call, *match: str) -> None:
    with pytest.raises(GanLightningError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and all(part in message for part in match), message


def test_wrong_lpips_weight_files_are_one_line(weight_files, tmp_path: Path) -> None:
    vgg_path, lin_path = weight_files
    good = torch.load(lin_path, weights_only=True)
    _one_line_error(lambda: lpips_vgg(vgg_path, tmp_path / "none.pth"), "--lpips-weights", "none.pth does not exist",
                    "weights/v0.1/vgg.pth", "lin0..lin4.model.1.weight", "(1, C, 1, 1), C = 64, 128, 256, 512, 512")
    (tmp_path / "garbage.pth").write_bytes(b"not a torch file")
    _one_line_error(lambda: lpips_vgg(vgg_path, tmp_path / "garbage.pth"), "cannot be read as a weights file")
    cases = {
        "list.pth": ([1, 2], "is not a state dict"),
        "missing.pth": ({k: v for k, v in good.items() if not k.startswith("lin3")}, "lacks lin3.model.1.weight"),
        "alex.pth": ({**good, "lin1.model.1.weight": torch.rand(1, 192, 1, 1)},
                     "lin1.model.1.weight has shape (1, 192, 1, 1), LPIPS VGG16's is (1, 128, 1, 1)"),
        "negative.pth": ({**good, "lin4.model.1.weight": -good["lin4.model.1.weight"]},
                         "lin4.model.1.weight holds negative or non-finite values"),
    }
    for name, (state, message) in cases.items():
        torch.save(state, tmp_path / name)
        _one_line_error(lambda n=name: lpips_vgg(vgg_path, tmp_path / n), str(tmp_path / name), message)


def test_wrong_vgg16_files_are_one_line(weight_files, tmp_path: Path) -> None:
    vgg_path, lin_path = weight_files
    good = torch.load(vgg_path, weights_only=True)
    _one_line_error(lambda: lpips_vgg(tmp_path / "none.pth", lin_path), "--vgg-weights", "none.pth does not exist",
                    "vgg16-397923af.pth")
    torch.save({k: v for k, v in good.items() if k != "features.28.bias"}, tmp_path / "short.pth")
    _one_line_error(lambda: lpips_vgg(tmp_path / "short.pth", lin_path), "lacks features.28.bias")
    torch.save({**good, "features.28.weight": torch.zeros(512, 512, 1, 1)}, tmp_path / "shape.pth")
    _one_line_error(lambda: lpips_vgg(tmp_path / "shape.pth", lin_path),
                    "features.28.weight has shape (512, 512, 1, 1), VGG16's is (512, 512, 3, 3)")
    torch.save({**good, "features.31.weight": torch.zeros(1)}, tmp_path / "vgg19.pth")  # a VGG19 file has more convs
    _one_line_error(lambda: lpips_vgg(tmp_path / "vgg19.pth", lin_path), "has features.31.weight, which VGG16 does not")
    torch.save({"state_dict": good, "epoch": 3}, tmp_path / "wrapped.pth")  # a training script's wrapper is read
    assert torch.equal(load_vgg16_features(tmp_path / "wrapped.pth")[28].weight, good["features.28.weight"])
