"""Pix2pix end to end on tiny generated pairs: the U-Net, the losses by hand, training, exact resume, inference
modes, translate / evaluate, and the offline edges2digits task."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gan_lightning.cli import main
from gan_lightning.errors import ConfigError, GanLightningError
from tests.conftest import assert_same_state
from tests.datamodules.test_paired import write_dataset

TINY = ["model.width_g=4", "model.width_d=4", "model.d_layers=1", "data.load_size=18", "data.crop_size=16",
        "data.download=false", "data.channels=3", "trainer.log_every_n_steps=1", "run.quiet=true",
        "trainer.accelerator=cpu", "callbacks.samples.n=6", "callbacks.samples.nrow=2",
        "callbacks.metrics.enabled=false"]


def tiny_pix2pix(root: Path, run: Path, steps: int, *extra: str, experiment: str = "pix2pix_facades") -> list[str]:
    return ["train", experiment, f"data.root={root}", f"run.dir={run}", f"trainer.max_steps={steps}",
            "trainer.max_epochs=null", "model.lr_schedule=constant", *TINY, *extra]


@pytest.fixture
def facades(tmp_path: Path) -> Path:
    """Random RGB pairs side by side (16 px halves); the facades experiment learns BtoA on them."""
    return write_dataset(tmp_path / "facades", size=16, channels=3, noise=True)


# --- the U-Net ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size, depth", [(32, 5), (64, 6), (256, 8)])
def test_unet_depth_follows_the_crop(size: int, depth: int) -> None:
    from gan_lightning.nets.translation import UnetGenerator

    net = UnetGenerator(3, 1, size, width=2)
    assert len(net.encoder) == depth and len(net.decoder) == depth - 1
    out = net(torch.randn(2, 3, size, size))
    assert out.shape == (2, 1, size, size) and out.abs().max() <= 1  # Tanh
    widths = [level[-1].out_channels if isinstance(level[-1], torch.nn.Conv2d) else level[-2].out_channels
              for level in net.encoder]
    assert widths == [2 * min(2**i, 8) for i in range(depth)]  # C64-C128-C256-C512-C512... at width 64


def test_unet_layers_are_where_the_paper_puts_them() -> None:
    from gan_lightning.nets.translation import UnetGenerator

    net = UnetGenerator(3, 3, 256, width=2, norm="batch")
    norms = [any(isinstance(m, torch.nn.BatchNorm2d) for m in level) for level in net.encoder]
    assert norms == [False] + [True] * 6 + [False]  # none on the first level nor the innermost
    assert not any(isinstance(m, torch.nn.LeakyReLU) for m in net.encoder[0])
    dropouts = [[m.p for m in layer if isinstance(m, torch.nn.Dropout)] for layer in net.decoder]
    assert dropouts == [[0.5]] * 3 + [[]] * 4  # CD512-CD512-CD512-C512-C256-C128-C64
    assert not any(isinstance(m, torch.nn.Dropout) for m in net.encoder.modules())
    # Skip connections: each decoder layer after the first takes its predecessor's output and the mirror skip.
    assert [layer[1].in_channels for layer in net.decoder] == [16, 32, 32, 32, 32, 16, 8]
    assert net.output[1].in_channels == 4 and isinstance(net.output[-1], torch.nn.Tanh)


def test_skips_carry_the_input_past_a_dead_bottleneck() -> None:
    from gan_lightning.nets.translation import UnetGenerator

    torch.manual_seed(0)
    net = UnetGenerator(1, 1, 32, width=4).eval()
    innermost = net.encoder[-1][-1]
    with torch.no_grad():
        innermost.weight.zero_()
        innermost.bias.zero_()  # nothing passes the 1 x 1 bottleneck now
        x = torch.randn(2, 1, 32, 32)
        assert not torch.allclose(net(x[:1]), net(x[1:]))  # the output still depends on the input: the skips


def test_bad_crop_sizes_fail_in_one_line(facades: Path, tmp_path: Path, capsys) -> None:
    from gan_lightning.nets.translation import unet_depth

    with pytest.raises(ValueError, match="power of two >= 4"):
        unet_depth(48)
    assert main(tiny_pix2pix(facades, tmp_path / "run", 1, "data.crop_size=12")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: model.name: pix2pix cannot model samples of shape (3, 12, 12): the U-Net generator "
                          "needs an image side that is a power of two") and "\n" not in err


# --- the losses -----------------------------------------------------------------------------------------------
def test_losses_by_hand() -> None:
    from gan_lightning.models import Pix2Pix

    torch.manual_seed(0)
    model = Pix2Pix({"width_g": 4, "width_d": 4, "d_layers": 1, "lambda_l1": 7.0}, (3, 16, 16))
    x, y = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    batch = model.prepare_batch({"input": x, "target": y})
    fake = model.make_fakes(batch)
    d = model.discriminator
    assert d.net[0].in_channels == 6  # D sees (input, output) pairs
    d_loss, d_logs = model.discriminator_loss(batch, fake.detach())
    real_logits, fake_logits = d(torch.cat([x, y], 1)), d(torch.cat([x, fake], 1))
    bce = F.binary_cross_entropy_with_logits
    ones, zeros = torch.ones_like(real_logits), torch.zeros_like(fake_logits)
    expected_d = 0.5 * (bce(real_logits, ones) + bce(fake_logits, zeros))
    # by hand: -mean log sigmoid(D(x, y)) - mean log(1 - sigmoid(D(x, G(x)))), halved
    by_hand = 0.5 * (-F.logsigmoid(real_logits).mean() - F.logsigmoid(-fake_logits).mean())
    torch.testing.assert_close(d_loss, expected_d)
    torch.testing.assert_close(d_loss, by_hand)
    torch.testing.assert_close(d_logs["d_real"], torch.sigmoid(real_logits).mean())
    g_loss, g_logs = model.generator_loss(batch, fake)
    adversarial = -F.logsigmoid(d(torch.cat([x, fake], 1))).mean()
    l1 = (fake - y).abs().mean()
    torch.testing.assert_close(g_logs["g_adv"], adversarial)
    torch.testing.assert_close(g_logs["l1"], l1)
    torch.testing.assert_close(g_loss, adversarial + 7.0 * l1)


def test_options_that_do_not_apply_are_refused() -> None:
    from gan_lightning.models import Pix2Pix

    # A pix2pix config has no keys for techniques that need latents or a per-sample critic.
    with pytest.raises(ConfigError, match=r"^model.gradient_penalty: unknown key; accepted: name, loss, "):
        Pix2Pix({"gradient_penalty": 10.0}, (3, 16, 16))
    with pytest.raises(ConfigError, match=r"^model.inference: 'train'; accepted: paper, eval$"):
        Pix2Pix({"inference": "train"}, (3, 16, 16))


# --- translating ---------------------------------------------------------------------------------------------
def test_inference_modes() -> None:
    from gan_lightning.models import Pix2Pix
    from gan_lightning.models.base import eval_forward

    torch.manual_seed(0)
    model = Pix2Pix({"width_g": 4, "width_d": 4, "d_layers": 1}, (1, 16, 16))
    with torch.no_grad():  # non-trivial running statistics, so eval and paper modes differ
        model.generator(torch.randn(4, 1, 16, 16) * 3 + 1)
    x = torch.randn(3, 1, 16, 16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    paper = model.translate(x)
    assert torch.equal(paper, model.translate(x))  # one fixed dropout draw: repeatable
    assert torch.equal(paper[1:2], model.translate(x[1:2]))  # batch 1: an image never sees another's statistics
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # running statistics untouched
    assert model.generator.training  # modes restored
    with torch.no_grad():  # the paper's way by hand: training mode (dropout on, the image's own statistics)
        torch.manual_seed(model.config.sample_seed)
        model.generator.train()
        for m in model.generator.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.track_running_stats = False
        expected = model.generator(x[2:3])
    torch.testing.assert_close(paper[2:3], expected)
    eval_model = Pix2Pix({"width_g": 4, "width_d": 4, "d_layers": 1, "inference": "eval"}, (1, 16, 16))
    eval_model.load_state_dict(before)
    torch.testing.assert_close(eval_model.translate(x), eval_forward(eval_model.generator, x))
    assert not torch.allclose(eval_model.translate(x), paper)
    with pytest.raises(GanLightningError, match=r"learned AtoB \(data.direction=AtoB\); it cannot translate BtoA"):
        model.translate(x, "BtoA")


def test_training_logs_every_loss_and_grids_show_input_output_target(facades: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(tiny_pix2pix(facades, run, 2, "data.batch_size=2", "callbacks.samples.every_n_steps=2")) == 0
    with open(run / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    for row in rows:
        losses = {key: float(row[f"train/{key}"]) for key in ("d_loss", "g_loss", "g_adv", "l1")}
        assert all(v > 0 for v in losses.values())
        assert losses["g_loss"] == pytest.approx(losses["g_adv"] + 100 * losses["l1"], rel=1e-5)
    # Rows input, output, target of two test pairs (16 px, 2-pixel padding).
    assert Image.open(run / "samples" / "step_0000002.png").size == (2 * 18 + 2, 3 * 18 + 2)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["experiment"]["data"]["direction"] == "BtoA"


def test_resume_is_exact(facades: Path, tmp_path: Path) -> None:
    extra = ("data.batch_size=2", "callbacks.checkpoint.every_n_steps=3", "callbacks.samples.every_n_steps=2")
    assert main(tiny_pix2pix(facades, tmp_path / "straight", 8, *extra)) == 0  # over 2 epochs of 3 batches
    assert main(tiny_pix2pix(facades, tmp_path / "split", 4, *extra)) == 0
    assert main(tiny_pix2pix(facades, tmp_path / "split", 8, *extra, "--resume")) == 0
    straight = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=True)
    split = torch.load(tmp_path / "split" / "checkpoints" / "last.ckpt", weights_only=True)
    assert_same_state(straight, split)
    assert any("running_mean" in key for key in straight["state_dict"])  # batch norm statistics compared too


def test_translate_and_evaluate_a_checkpoint(facades: Path, tmp_path: Path, capsys) -> None:
    from gan_lightning.loading import load_model

    run = tmp_path / "run"
    assert main(tiny_pix2pix(facades, run, 2)) == 0
    ckpt = str(run / "checkpoints" / "last.ckpt")
    labels = tmp_path / "labels"  # the facades direction is BtoA: inputs are the right halves
    labels.mkdir()
    for path in sorted((facades / "test").iterdir()):
        Image.open(path).crop((16, 0, 32, 16)).save(labels / path.name)
    out = tmp_path / "photos"
    capsys.readouterr()
    assert main(["translate", ckpt, "--input", str(labels), "--direction", "AtoB", "--out", str(out)]) == 1
    assert capsys.readouterr().err.strip() == ("error: this pix2pix model learned BtoA (data.direction=BtoA); it "
                                               "cannot translate AtoB: use --direction BtoA")
    assert main(["translate", ckpt, "--input", str(labels), "--out", str(out), "--batch-size", "1"]) == 0
    assert "translated images (BtoA)" in capsys.readouterr().out  # the learned direction by default
    assert sorted(p.name for p in out.iterdir()) == ["007.png", "008.png"]
    model = load_model(ckpt)
    source = torch.from_numpy(np.array(Image.open(labels / "008.png"))).permute(2, 0, 1).float() / 127.5 - 1
    expected = model.translate(source[None], "BtoA")[0].add(1).div(2).mul(255).add(0.5).clamp(0, 255).byte()
    written = torch.from_numpy(np.asarray(Image.open(out / "008.png"))).permute(2, 0, 1)
    assert (written.int() - expected.int()).abs().max() <= 1  # the file holds G of that input
    capsys.readouterr()
    assert main(["evaluate", ckpt, "--metrics", "fid", "--n", "50", "--extractor", "mnist",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["n_samples"] == 2 and scores["fid"] > 0  # G over both test inputs, against their targets
    assert main(["sample", ckpt, "--out", str(tmp_path / "x.png")]) == 1
    assert "use gan-lightning translate CHECKPOINT --input DIR --direction BtoA" in capsys.readouterr().err


# --- edges2digits ------------------------------------------------------------------------------------------------
def test_edges2digits_writer(tmp_path: Path) -> None:
    from datamodules.paired import digit_edges, write_edges2digits

    counts = {"train": 30, "val": 5, "test": 10}
    write_edges2digits(tmp_path / "e2d", counts=counts)
    contents = {}
    for split, count in counts.items():
        files = sorted((tmp_path / "e2d" / split).iterdir())
        assert len(files) == count
        pairs = torch.stack([torch.from_numpy(np.array(Image.open(p))) for p in files])[:, None]
        assert pairs.shape[1:] == (1, 32, 64) and pairs.dtype == torch.uint8
        edges, digits = pairs[..., :32], pairs[..., 32:]
        assert torch.equal(edges, digit_edges(digits))  # A is a function of B
        assert set(edges.unique().tolist()) == {0, 255} and digits.float().mean() > 10
        contents[split] = {p.read_bytes() for p in files}
    assert not (contents["train"] & contents["test"]) and not (contents["train"] & contents["val"])
    assert not (contents["val"] & contents["test"])  # disjoint splits
    # The outer edge of a square: the ring of pixels around it.
    square = torch.zeros(1, 1, 6, 6, dtype=torch.uint8)
    square[..., 2:4, 2:4] = 200
    ring = torch.zeros(6, 6, dtype=torch.uint8)
    ring[1:5, 1:5] = 255
    ring[2:4, 2:4] = 0
    assert torch.equal(digit_edges(square)[0, 0], ring)


def test_edges2digits_experiment_trains_from_nothing(tmp_path: Path, monkeypatch) -> None:
    """data.download=true writes the task offline (here a small one), then one tiny step trains on it."""
    from datamodules import paired
    from gan_lightning.loading import load_model

    root = tmp_path / "edges2digits"
    small = paired.write_edges2digits
    monkeypatch.setattr(paired, "write_edges2digits", lambda path: small(path, counts={"train": 16, "val": 4,
                                                                                        "test": 4}))
    assert main(["train", "pix2pix_edges2digits", f"data.root={root}", f"run.dir={tmp_path / 'run'}",
                 "trainer.max_steps=1", "model.width_g=4", "model.width_d=4", "--quiet"]) == 0
    assert sorted(p.name for p in root.iterdir()) == ["test", "train", "val"]
    model = load_model(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert model.sample_shape == (1, 32, 32) and len(model.generator.encoder) == 5
