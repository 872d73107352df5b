"""Super-resolution networks: parameter counts at the papers' sizes against formulas written out here, output shapes
at x2/x3/x4, sub-pixel upsampling, and the VGG19 layer map against torchvision's own layer order."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from gan_lightning.errors import ConfigError
from gan_lightning.nets.superres import RRDBNet, SRDiscriminator, SRResNet, upsampling_stages
from gan_lightning.nets.vgg import VGGFeatures, layer_index, load_vgg19_weights, vgg19_features


def conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_srresnet_x4_has_the_papers_parameter_count() -> None:
    # head 9x9 + PReLU; 16 blocks of (conv3x3 + BN) x 2 + PReLU; conv3x3 + BN; two x2 stages conv 64->256 + PReLU;
    # 9x9 tail. BN: weight and bias per channel.
    block = 2 * (conv(64, 64, 3) + 2 * 64) + 1
    expected = (conv(3, 64, 9) + 1) + 16 * block + (conv(64, 64, 3) + 2 * 64) + 2 * (conv(64, 256, 3) + 1) \
        + conv(64, 3, 9)
    assert expected == 1_549_462  # "1.5M parameters" in the papers that quote SRResNet
    assert count(SRResNet()) == expected


def test_rrdbnet_has_esrgans_parameter_count() -> None:
    width, growth = 64, 32
    dense_block = sum(conv(width + i * growth, growth, 3) for i in range(4)) + conv(width + 4 * growth, width, 3)
    expected = conv(3, width, 3) + 23 * 3 * dense_block + conv(width, width, 3) + 2 * conv(width, width, 3) \
        + conv(width, width, 3) + conv(width, 3, 3)
    assert expected == 16_697_987  # the released RRDB_ESRGAN_x4.pth holds this many
    assert count(RRDBNet()) == expected


def test_srgan_discriminator_has_the_papers_parameter_count_at_96_px() -> None:
    widths = [64, 64, 128, 128, 256, 256, 512, 512]
    pairs = zip(widths[:-1], widths[1:], strict=True)
    convs = conv(3, 64, 3) + sum(conv(a, b, 3, bias=False) + 2 * b for a, b in pairs)  # BN after all but the first
    dense = (512 * 6 * 6) * 1024 + 1024 + 1024 + 1  # four stride-2 convs: 96 -> 6
    assert count(SRDiscriminator()) == convs + dense


@pytest.mark.parametrize("crop, side", [(96, 6), (28, 2), (24, 2), (128, 8), (33, 3)])
def test_discriminator_dense_layer_follows_the_crop(crop: int, side: int) -> None:
    net = SRDiscriminator(1, crop, width=2, dense=4)
    assert net.classifier[1].in_features == 16 * side * side
    assert net(torch.randn(3, 1, crop, crop)).shape == (3,)
    with pytest.raises(ValueError, match=f"built for {crop} px"):
        net(torch.randn(1, 1, crop + 4, crop + 4))


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("net_cls", [SRResNet, RRDBNet])
def test_generators_upscale_by_the_scale(net_cls, scale: int) -> None:
    net = net_cls(channels=3, scale=scale, width=8, n_blocks=1)
    assert net(torch.randn(2, 3, 5, 7)).shape == (2, 3, 5 * scale, 7 * scale)


def test_upsampling_stages() -> None:
    assert upsampling_stages(2) == [2] and upsampling_stages(3) == [3] and upsampling_stages(4) == [2, 2]
    with pytest.raises(ValueError, match="scale 8"):
        upsampling_stages(8)
    shuffles = [m.upscale_factor for m in SRResNet(scale=4, width=4, n_blocks=0).modules()
                if isinstance(m, nn.PixelShuffle)]
    assert shuffles == [2, 2]
    assert [m.upscale_factor for m in SRResNet(scale=3, width=4, n_blocks=0).modules()
            if isinstance(m, nn.PixelShuffle)] == [3]


def test_pixel_shuffle_places_channel_groups_as_sub_pixels() -> None:
    # Output pixel (r*i + a, r*j + b) of channel c is input channel c*r^2 + a*r + b at (i, j) (Shi et al. 2016).
    x = torch.arange(2 * 4 * 2 * 3, dtype=torch.float32).view(1, 8, 2, 3)
    out = nn.PixelShuffle(2)(x)
    for c in range(2):
        for a in range(2):
            for b in range(2):
                assert torch.equal(out[0, c, a::2, b::2], x[0, c * 4 + a * 2 + b])


def test_rrdb_residual_scaling() -> None:
    # With the last conv of every dense block zeroed, each dense block is the identity, so each RRDB gives
    # x + 0.2 * x: two RRDBs scale their input by 1.2^2.
    net = RRDBNet(channels=1, scale=2, width=4, n_blocks=2, growth=2)
    for module in net.blocks.modules():
        if hasattr(module, "convs"):
            nn.init.zeros_(module.convs[-1].weight)
            nn.init.zeros_(module.convs[-1].bias)
    x = torch.randn(1, 4, 3, 3)
    assert torch.allclose(net.blocks(x), 1.2**2 * x)


def test_vgg_layer_names_map_to_torchvisions_features_order() -> None:
    from torchvision.models import vgg11

    assert str(vgg19_features()) == str(torchvision_vgg19_features())  # the same layers as torchvision's vgg19
    with torch.device("meta"):
        assert str(vgg11().features) != str(vgg19_features())
    features = vgg19_features()
    convs = [i for i, m in enumerate(features) if isinstance(m, nn.Conv2d)]
    pools = [i for i, m in enumerate(features) if isinstance(m, nn.MaxPool2d)]
    assert len(convs) == 16 and len(pools) == 5
    assert layer_index("conv5_4") == convs[-1] == 34  # ESRGAN: before the activation
    assert layer_index("relu5_4") == 35 and isinstance(features[35], nn.ReLU)  # SRGAN
    assert layer_index("relu2_2") == 8 and layer_index("conv1_1") == 0 and layer_index("pool5") == pools[-1] == 36
    assert layer_index("conv3_1") == convs[4] and features[convs[4]].in_channels == 128
    with pytest.raises(ConfigError, match="no layer 'relu5_5'"):
        layer_index("relu5_5")


def test_vgg_features_normalise_from_minus_one_one(tmp_path: Path) -> None:
    vgg = VGGFeatures("conv1_1")
    grey = torch.rand(1, 1, 8, 8) * 2 - 1
    unit = (grey.expand(-1, 3, -1, -1) + 1) / 2
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(
        1, 3, 1, 1)
    expected = torch.nn.functional.conv2d((unit - mean) / std, vgg.features[0].weight, vgg.features[0].bias,
                                          padding=1)
    assert torch.allclose(vgg(grey), expected, atol=1e-5)
    assert not any(p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training
    relu = VGGFeatures("relu5_4")
    assert len(relu.features) == 36 and isinstance(relu.features[-1], nn.ReLU)


def torchvision_vgg19_features() -> nn.Sequential:
    from torchvision.models import vgg19

    with torch.device("meta"):  # the layers only: no memory, no initialisation
        return vgg19(weights=None).features


def test_vgg_weights_file_loads_and_wrong_files_are_one_line(tmp_path: Path) -> None:
    full = vgg19_features()[:7]  # a file cut short after conv2_1 (enough for these layers, and small)
    state = {f"features.{k}": v for k, v in full.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision's file has the classifier too: ignored
    good = tmp_path / "vgg19.pth"
    torch.save(state, good)
    vgg = VGGFeatures("conv2_1", good)
    assert torch.equal(vgg.features[5].weight, full[5].weight)
    missing = tmp_path / "missing.pth"
    torch.save({k: v for k, v in state.items() if k != "features.2.bias"}, missing)
    with pytest.raises(ConfigError, match=r"missing.pth lacks features\.2\.bias"):
        VGGFeatures("conv2_1", missing)
    extra = tmp_path / "extra.pth"
    torch.save({**state, "features.99.weight": torch.zeros(1)}, extra)
    with pytest.raises(ConfigError, match=r"extra.pth has features\.99\.weight"):
        load_vgg19_weights(vgg19_features()[:3], extra)
    short = tmp_path / "short.pth"
    torch.save(state, short)
    with pytest.raises(ConfigError, match=r"short.pth lacks features\.7\.weight"):
        VGGFeatures("conv2_2", short)
    with pytest.raises(ConfigError, match="does not exist"):
        VGGFeatures("conv1_1", tmp_path / "nowhere.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ConfigError, match="cannot be read"):
        VGGFeatures("conv1_1", garbage)
