"""Extractors: preprocessing, the FID Inception layout and weight loading, the shipped MNIST classifier."""

import urllib.error

import pytest
import torch
import torch.nn.functional as F

from gan_lightning.metrics import inception as inc
from gan_lightning.metrics.errors import MetricsError
from gan_lightning.metrics.extractors import (
    EXTRACTORS,
    InceptionFID,
    MNISTClassifier,
    build_extractor,
    to_net_input,
)
from gan_lightning.metrics.mnist import SHIPPED_WEIGHTS, MNISTNet, read_idx


# ---------------------------------------------------------------- preprocessing
def test_range_mapping_to_tf_inception_input():
    x = torch.tensor([-1.0, 1.0]).view(1, 1, 1, 2).expand(1, 1, 299, 2).contiguous()
    x = F.pad(x, (0, 297))  # 299x299, corners at -1 and +1
    out = to_net_input(x, 299, 3, InceptionFID.input_scale, InceptionFID.input_shift)
    # Data space x = u / 127.5 - 1 for uint8 u; the TF graph wants (u - 128) / 128.
    assert out[0, 0, 0, 0].item() == pytest.approx((0 - 128) / 128)
    assert out[0, 0, 0, 1].item() == pytest.approx((255 - 128) / 128)


def test_gray_is_repeated_to_three_channels_and_resized_bilinear_antialias():
    gray = torch.rand(2, 1, 28, 28) * 2 - 1
    out = to_net_input(gray, 299, 3)
    assert out.shape == (2, 3, 299, 299)
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])
    expected = F.interpolate(gray, size=(299, 299), mode="bilinear", align_corners=False, antialias=True)
    torch.testing.assert_close(out[:, :1], expected)
    # Shrinking is where antialias matters: it must differ from the aliasing (plain bilinear) filter.
    big = torch.rand(1, 1, 64, 64) * 2 - 1
    aliased = F.interpolate(big, size=(28, 28), mode="bilinear", align_corners=False)
    assert not torch.allclose(to_net_input(big, 28, 1), aliased)


def test_rgb_to_gray_uses_luma_and_keeps_gray_inputs():
    rgb = torch.rand(3, 3, 28, 28) * 2 - 1
    out = to_net_input(rgb, 28, 1)
    torch.testing.assert_close(out[:, 0], 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2])
    gray = rgb[:, :1]
    torch.testing.assert_close(to_net_input(gray.expand(-1, 3, -1, -1), 28, 1), gray)


@pytest.mark.parametrize(
    "images, match",
    [
        (torch.rand(2, 3, 8, 8) * 255, r"\[-1, 1\]"),  # forgot to normalise
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), "float"),
        (torch.zeros(2, 4, 8, 8), "C in"),
        (torch.zeros(3, 8, 8), "C in"),
    ],
)
def test_preprocessing_rejects_non_data_space_inputs(images, match):
    with pytest.raises(MetricsError, match=match):
        to_net_input(images, 8, 3)


# ---------------------------------------------------------------- FID Inception
def test_fid_inception_layout_matches_torchvision_inception3():
    from torchvision.models import inception_v3

    ref = inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False).state_dict()
    ours = inc.FIDInceptionV3().state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in ref.items()}


@pytest.fixture(scope="module")
def random_inception_file(tmp_path_factory):
    """A state dict of the FID architecture with random weights and non-trivial BN statistics."""
    torch.manual_seed(0)
    net = inc.FIDInceptionV3()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    # Like the 2015 export: no num_batches_tracked buffers (torch fills them in when loading).
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path_factory.mktemp("weights") / inc.FID_WEIGHTS_FILE
    torch.save(state, path)
    return path, net.eval()


def test_inception_loads_weights_file_and_outputs_2048_features_1008_logits(random_inception_file):
    path, net = random_inception_file
    extractor = InceptionFID(weights_path=path)
    for name, tensor in net.state_dict().items():
        if not name.endswith("num_batches_tracked"):
            assert torch.equal(extractor.net.state_dict()[name], tensor), name
    images = torch.rand(2, 1, 28, 28) * 2 - 1
    out = extractor(images)
    assert out.features.shape == (2, 2048) and out.logits.shape == (2, 1008)
    with torch.no_grad():
        features, logits = net(extractor.preprocess(images))
    torch.testing.assert_close(out.features, features)
    # IS logits are pool3 @ W without the bias, as in the reference IS code.
    torch.testing.assert_close(out.logits, out.features @ net.fc.weight.T, rtol=1e-4, atol=1e-4)
    assert extractor.feature_dim == 2048 and extractor.name.startswith("inception")
    extractor.train()
    assert not extractor.net.training and not any(p.requires_grad for p in extractor.parameters())


def test_inception_downloads_into_hub_cache_when_no_path(random_inception_file, tmp_path, monkeypatch):
    path, _ = random_inception_file
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    calls = []

    def fake_download(url, dst, **kwargs):
        calls.append(url)
        torch.save(torch.load(path, weights_only=True), dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    assert inc.resolve_inception_weights(None) == tmp_path / "checkpoints" / inc.FID_WEIGHTS_FILE
    assert calls == [inc.FID_WEIGHTS_URL]
    inc.resolve_inception_weights(None)  # now cached: no second download
    assert len(calls) == 1


def test_fid_inception_equals_torchvision_inception3_with_the_tf_pooling(random_inception_file, monkeypatch):
    """Same weights in torchvision's Inception3, with its pools patched to the TF graph's: same outputs.

    Checks what the key layout cannot: branch order, paddings, strides and where the pooling tweaks apply.
    """
    import torchvision.models.inception as tvi

    _, net = random_inception_file
    x = torch.rand(1, 3, 299, 299) * 2 - 1
    with torch.no_grad():
        features, logits = net(x)
    ref = tvi.Inception3(num_classes=1008, aux_logits=False, init_weights=False, transform_input=False).eval()
    ref.load_state_dict(net.state_dict())
    avg_pool, in_7c = F.avg_pool2d, []

    def tf_pool(inp, kernel_size, stride=None, padding=0, **kwargs):
        if in_7c:  # Mixed_7c max-pools its pooling branch
            return F.max_pool2d(inp, kernel_size, stride, padding)
        return avg_pool(inp, kernel_size, stride, padding, count_include_pad=False)

    monkeypatch.setattr(tvi.F, "avg_pool2d", tf_pool)
    ref.Mixed_7c.register_forward_pre_hook(lambda *a: in_7c.append(1))
    ref.Mixed_7c.register_forward_hook(lambda *a: in_7c.clear())
    pooled = []
    ref.fc.register_forward_pre_hook(lambda module, args: pooled.append(args[0]))
    with torch.no_grad():
        ref_logits = ref(x)
    torch.testing.assert_close(features, pooled[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(logits + net.fc.bias, ref_logits, rtol=1e-4, atol=1e-4)


def test_missing_inception_weights_error_names_file_and_config_key(tmp_path):
    missing = tmp_path / "nowhere" / "pt_inception.pth"
    with pytest.raises(MetricsError) as err:
        InceptionFID(weights_path=missing)
    message = str(err.value)
    assert str(missing) in message and "callbacks.metrics.inception_weights" in message
    assert "\n" not in message


def test_offline_download_failure_is_a_clear_metrics_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(url, dst, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(MetricsError) as err:
        build_extractor("inception")
    message = str(err.value)
    assert inc.FID_WEIGHTS_FILE in message and "callbacks.metrics.inception_weights" in message
    assert "URLError" in message and "\n" not in message
    with pytest.raises(MetricsError, match="download is off"):
        InceptionFID(download=False)


def test_wrong_weights_file_is_rejected(tmp_path):
    wrong = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, wrong)
    with pytest.raises(MetricsError, match="do not match the FID Inception-v3"):
        InceptionFID(weights_path=wrong)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(MetricsError, match="cannot read Inception weights"):
        InceptionFID(weights_path=garbage)


# ---------------------------------------------------------------- registry
def test_build_extractor_validates_the_name():
    with pytest.raises(MetricsError, match="accepted: inception, mnist"):
        build_extractor("vgg")
    assert set(EXTRACTORS) == {"inception", "mnist"}
    assert isinstance(build_extractor("mnist"), MNISTClassifier)


# ---------------------------------------------------------------- MNIST classifier
def test_shipped_mnist_weights_are_small_and_classify_real_test_digits(mnist_test):
    assert SHIPPED_WEIGHTS.is_file() and SHIPPED_WEIGHTS.stat().st_size < 1_000_000
    images, labels = mnist_test
    clf = MNISTClassifier()
    out = clf(images[:1000])
    assert out.features.shape == (1000, 128) and out.logits.shape == (1000, 10)
    accuracy = (out.logits.argmax(1) == labels[:1000]).float().mean().item()
    assert accuracy >= 0.97
    # The same digits as RGB (what an RGB pipeline would hand over) classify identically.
    rgb = clf(images[:200].expand(-1, 3, -1, -1)).logits
    torch.testing.assert_close(rgb, out.logits[:200])
    hist = clf.class_histogram(images[:1000])
    assert hist.sum() == 1000 and (hist > 0).sum() == 10
    assert clf.name.startswith("mnist-cnn-")


def test_mnist_classifier_name_changes_with_its_weights(tmp_path):
    other = tmp_path / "other.pt"
    torch.manual_seed(1)
    torch.save(MNISTNet().state_dict(), other)
    assert MNISTClassifier(other).name != MNISTClassifier().name


def test_idx_reader_reads_plain_and_gzip(tmp_path):
    import gzip

    data = torch.arange(24, dtype=torch.uint8).numpy().reshape(2, 3, 4)
    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in data.shape)
    (tmp_path / "x-idx3-ubyte").write_bytes(header + data.tobytes())
    (tmp_path / "x-idx3-ubyte.gz").write_bytes(gzip.compress(header + data.tobytes()))
    assert (read_idx(tmp_path / "x-idx3-ubyte") == data).all()
    assert (read_idx(tmp_path / "x-idx3-ubyte.gz") == data).all()
    (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x01" + (1).to_bytes(4, "big") + b"abcd")
    with pytest.raises(MetricsError, match="unsigned-byte IDX"):
        read_idx(tmp_path / "bad")


def test_fid_inception_pooling_follows_the_tf_graph():
    # Border averages exclude the padding (a constant map stays constant), unlike torchvision's default.
    ones = torch.ones(1, 2, 5, 5)
    torch.testing.assert_close(inc._avg_pool_no_pad(ones), ones)
    net = inc.FIDInceptionV3()
    assert net.Mixed_7c.max_pool and not net.Mixed_7b.max_pool
