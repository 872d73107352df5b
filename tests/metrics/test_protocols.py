"""Resize protocols: ``tf`` against torch-fidelity's TF1 bilinear, ``clean`` against clean-fid's own resizer, the
default unchanged, and the protocol part of the extractor's name (the statistics cache key)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan_lightning.metrics import MetricsError, build_extractor
from gan_lightning.metrics.extractors import RESIZE_PROTOCOLS, to_net_input
from tests.metrics.conftest import TinyExtractor


def _images(channels: int = 3, size: int = 28) -> torch.Tensor:
    return torch.rand(2, channels, size, size, generator=torch.Generator().manual_seed(size)) * 2 - 1


def _pixels(x: torch.Tensor) -> torch.Tensor:
    return (x.double() + 1) * 127.5  # data space -> the [0, 255] pixel values the reference tools resize


@pytest.mark.parametrize("size", [299, 64, 17])
def test_tf_equals_torch_fidelitys_tf1_bilinear(size: int) -> None:
    fidelity = pytest.importorskip("torch_fidelity.interpolate_compat_tensorflow")
    x = _images()
    reference = fidelity.interpolate_bilinear_2d_like_tensorflow1x(_pixels(x).float(), size=(size, size),
                                                                    align_corners=False)
    ours = _pixels(RESIZE_PROTOCOLS["tf"](x, size))
    assert (ours - reference.double()).abs().max() < 1e-3  # float32 round-off on a 0..255 scale


@pytest.mark.parametrize("size", [299, 64, 17])
def test_clean_equals_clean_fids_pil_bicubic(size: int) -> None:
    cleanfid = pytest.importorskip("cleanfid.resize")
    x = _images()
    resize = cleanfid.make_resizer("PIL", False, "bicubic", (size, size))  # what build_resizer("clean") makes
    reference = np.stack([resize(image.permute(1, 2, 0).numpy()).transpose(2, 0, 1) for image in _pixels(x).float()])
    ours = _pixels(RESIZE_PROTOCOLS["clean"](x, size)).numpy()
    assert np.abs(ours - reference).max() < 1e-3


def test_tf_by_hand_on_a_ramp() -> None:
    # TF1 (no half-pixel centres): output i samples input i * in / out; 4 -> 8 on a ramp 0, 1, 2, 3 gives steps of
    # 0.5, and the last two outputs clamp at the last input.
    ramp = torch.arange(4.0).repeat(4, 1)[None, None] / 10
    row = RESIZE_PROTOCOLS["tf"](ramp, 8)[0, 0, 0] * 10
    torch.testing.assert_close(row, torch.tensor([0, 0.5, 1, 1.5, 2, 2.5, 3, 3]))


def test_the_default_is_todays_antialiased_bilinear_and_the_protocols_differ() -> None:
    x = _images()
    today = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False, antialias=True)
    assert torch.equal(to_net_input(x, 299, 3), today)
    resized = {name: _pixels(to_net_input(x, 299, 3, protocol=name)) for name in RESIZE_PROTOCOLS}
    # The three disagree by whole pixel values on 28 -> 299, which is why the protocol is part of the cache key.
    assert (resized["tf"] - resized["antialias"]).abs().max() > 1
    assert (resized["clean"] - resized["antialias"]).abs().max() > 1


def test_the_protocol_is_part_of_the_extractor_name() -> None:
    names = {name: TinyExtractor().use_protocol(name).name for name in RESIZE_PROTOCOLS}
    assert names == {"antialias": "tiny", "tf": "tiny-resize-tf", "clean": "tiny-resize-clean"}
    back = TinyExtractor().use_protocol("clean").use_protocol("antialias")
    assert back.name == "tiny" and back.protocol == "antialias"
    mnist = build_extractor("mnist", protocol="tf")
    assert mnist.name.endswith("-resize-tf") and mnist.protocol == "tf"
    with pytest.raises(MetricsError, match="unknown resize protocol 'pil'; accepted: antialias, tf, clean"):
        build_extractor("mnist", protocol="pil")


def test_each_protocol_scores_through_the_extractor() -> None:
    extractor = TinyExtractor()
    x = _images(size=12)
    for name in RESIZE_PROTOCOLS:
        features = extractor.use_protocol(name)(x).features
        expected = extractor.net(to_net_input(x, 8, 3, protocol=name))[0]
        torch.testing.assert_close(features, expected)
