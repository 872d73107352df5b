"""The augmentation technique on models: ADA's p moves by the reference's step toward r_t, every mode trains from the
CLI, exact resume with ADA on, everything D sees is augmented, and bad settings fail in one line."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from gan_lightning.cli import main
from gan_lightning.models.dcgan import DCGAN
from gan_lightning.models.pix2pix import Pix2Pix
from gan_lightning.nets.layers import pack_samples
from gan_lightning.techniques import Augmentation
from tests.conftest import assert_same_state, tiny_overrides

BATCH = 8


def ada_model(**options) -> DCGAN:
    return DCGAN(latent_dim=8, width_g=4, width_d=4, sample_shape=(1, 28, 28),
                 **{"augment": "ada", "ada_interval": 2, "ada_kimg": 0.5, **options})


def feed(model: DCGAN, scores: torch.Tensor) -> None:
    """One D step's worth of real scores into the technique, as the loop does after a D update."""
    model.real_scores = (scores, BATCH)
    model._batch_count = int(model.batches_seen)
    model.technique(Augmentation).after_discriminator_step(model)
    model.batches_seen.add_(1)


def test_p_rises_on_a_discriminator_that_overfits_by_the_reference_step() -> None:
    model = ada_model()
    step = BATCH * 2 / (0.5 * 1000)  # batch * interval / (ada_kimg * 1000) = 0.032
    feed(model, torch.full((BATCH, 1), 3.0))
    assert model.augment_p.item() == 0.0  # only at the end of an interval
    feed(model, torch.full((BATCH, 1), 0.5))
    assert model.ada_rt.item() == 1.0  # sign(D(real)) = +1 everywhere
    assert model.augment_p.item() == pytest.approx(step, abs=1e-7)
    for _ in range(4):
        feed(model, torch.ones(BATCH, 1))
    assert model.augment_p.item() == pytest.approx(3 * step, abs=1e-7)


def test_p_falls_on_a_discriminator_that_does_not_and_stops_at_zero() -> None:
    model = ada_model(augment_p=0.05)
    step = BATCH * 2 / (0.5 * 1000)
    # r_t = (6 - 2) / 8 = 0.5 < 0.6: p goes down.
    mixed = torch.tensor([1.0, 2.0, 3.0, 1.0, 1.0, 1.0, -1.0, -2.0])[:, None]
    feed(model, mixed)
    feed(model, mixed)
    assert model.ada_rt.item() == pytest.approx(0.5)
    assert model.augment_p.item() == pytest.approx(0.05 - step, abs=1e-7)
    feed(model, -torch.ones(BATCH, 1))
    feed(model, -torch.ones(BATCH, 1))
    assert model.augment_p.item() == 0.0  # clamped at 0


def test_fixed_mode_measures_rt_but_keeps_p() -> None:
    model = ada_model(augment="fixed", augment_p=0.3)
    for _ in range(4):
        feed(model, torch.ones(BATCH, 1))
    assert model.ada_rt.item() == 1.0 and model.augment_p.item() == pytest.approx(0.3)


def test_everything_d_sees_is_augmented_and_gradients_reach_g() -> None:
    model = DCGAN(latent_dim=8, width_g=4, width_d=4, sample_shape=(1, 28, 28), augment="fixed", augment_p=1.0,
                  augment_pipeline="blit")
    x = torch.rand(BATCH, 1, 28, 28)
    torch.manual_seed(0)
    assert not torch.equal(model.d_input(x), x)
    model.augment_p.zero_()
    assert torch.equal(model.d_input(x), x)
    model.augment_p.fill_(1.0)
    fakes = model.generator(torch.randn(BATCH, 8))
    model.generator.zero_grad()
    model.discriminate(fakes, None).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.generator.parameters()
               if p.requires_grad and p.dim() > 1)


def test_packed_samples_are_augmented_each_on_its_own() -> None:
    model = DCGAN(latent_dim=8, width_g=4, width_d=4, sample_shape=(1, 28, 28), pack=2, augment="fixed",
                  augment_p=1.0, augment_pipeline="color")
    x = torch.rand(BATCH, 1, 28, 28)
    twins = x.repeat_interleave(2, 0)  # each pack holds one image twice
    torch.manual_seed(0)
    out = model.d_input(twins)
    assert out.shape == pack_samples(twins, 2).shape == (BATCH, 2, 28, 28)
    assert not torch.equal(out[:, 0], out[:, 1])  # two samples, two draws


def test_pix2pix_augments_input_and_output_together() -> None:
    model = Pix2Pix(width_g=4, width_d=4, d_layers=1, sample_shape=(3, 16, 16), augment="fixed", augment_p=1.0)
    seen = []
    model.discriminator.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0]))
    image = torch.rand(4, 3, 16, 16) * 2 - 1
    torch.manual_seed(0)
    model.discriminate(image, image)  # condition == output: the pair stays equal after its shared transform
    assert torch.equal(seen[0][:, :3], seen[0][:, 3:]) and not torch.allclose(seen[0][:, :3], image)


def read_metrics(run: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))


def train(data: Path, run: Path, steps: int, *extra: str) -> int:
    return main(["train", "dcgan_mnist", *tiny_overrides(data, run, steps), *extra])


@pytest.mark.parametrize("mode", ["ada", "fixed", "diffaugment"])
def test_each_mode_trains_and_logs(mode: str, fake_mnist: Path, tmp_path: Path) -> None:
    extra = {"ada": ["model.augment=ada", "model.ada_kimg=0.1"],
             "fixed": ["model.augment=fixed", "model.augment_p=0.5"],
             "diffaugment": ["model.augment=diffaugment", "model.diffaugment_policy=translation,cutout"]}[mode]
    assert train(fake_mnist, tmp_path / "run", 8, *extra) == 0
    rows = read_metrics(tmp_path / "run")
    assert len(rows) == 8 and all(row["train/ada_rt"] != "" for row in rows)
    if mode == "ada":  # after 4 and 8 batches: p += sign(r_t - 0.6) * 8 * 4 / (0.1 * 1000), from 0, clamped at 0
        p = 0.0
        for index in (3, 7):
            sign = (float(rows[index]["train/ada_rt"]) > 0.6) - (float(rows[index]["train/ada_rt"]) < 0.6)
            p = max(0.0, p + sign * 0.32)
            assert float(rows[index]["train/ada_p"]) == pytest.approx(p, abs=1e-6)
        assert float(rows[2]["train/ada_p"]) == 0.0
    elif mode == "fixed":
        assert {row["train/ada_p"] for row in rows} == {"0.5"}


def test_resume_with_ada_is_bit_exact(fake_mnist: Path, tmp_path: Path) -> None:
    # Stop at batch 6, mid-interval (adjustments after batches 4, 8, 12): r_t's running sums must survive too.
    extra = ("model.augment=ada", "model.augment_p=0.2", "model.ada_kimg=0.1", "model.augment_pipeline=bgc")
    assert train(fake_mnist, tmp_path / "straight", 12, *extra) == 0
    assert train(fake_mnist, tmp_path / "split", 6, *extra) == 0
    assert train(fake_mnist, tmp_path / "split", 12, *extra, "--resume") == 0
    a = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "split" / "checkpoints" / "last.ckpt", weights_only=True)
    assert_same_state(a, b)
    assert {"augment_p", "ada_stats", "ada_rt"} <= set(a["state_dict"])
    assert a["state_dict"]["augment_p"] != 0.2  # p moved: the resumed run had something to reproduce


@pytest.mark.parametrize(("extra", "message"), [
    (["model.augment=flip"], "model.augment: 'flip'; accepted: none, ada, fixed, diffaugment"),
    (["model.augment=fixed"], "model.augment_p: augment=fixed needs"),
    (["model.augment=ada", "model.augment_pipeline=bgcx"], "model.augment_pipeline"),
    (["model.augment=diffaugment", "model.diffaugment_policy=color,zoom"], "model.diffaugment_policy"),
    (["model.augment=ada", "model.ada_kimg=0"], "model.ada_kimg"),
    (["model.augment=ada", "model.loss=wasserstein"], "model.augment: ada reads sign(D(real))"),
])
def test_bad_settings_fail_in_one_line(extra: list[str], message: str, fake_mnist: Path, tmp_path: Path,
                                       capsys) -> None:
    assert train(fake_mnist, tmp_path / "run", 2, *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err


def test_points_are_refused(tmp_path: Path, capsys) -> None:
    code = main(["train", "gan_ring", "model.augment=diffaugment", f"run.dir={tmp_path / 'run'}", "--dry-run"])
    err = capsys.readouterr().err
    assert code != 0 and "model.augment: augmentations act on images" in err and err.count("\n") == 1, err


def test_stylegan2_trains_with_ada_and_r1_differentiates_through_the_augmentation() -> None:
    from gan_lightning.models.stylegan2 import StyleGAN2
    from gan_lightning.techniques.r1 import R1
    from tests.models.test_base_loop import fit

    tiny = {"latent_dim": 8, "w_dim": 8, "channel_base": 64, "channel_max": 8, "mapping_layers": 1}
    model = StyleGAN2({**tiny, "augment": "fixed", "augment_p": 1.0, "r1_gamma": 1.0, "r1_interval": 1}, (1, 16, 16))
    reals = torch.rand(4, 1, 16, 16) * 2 - 1
    augment = model.technique(Augmentation).augment

    def squared_gradient_norm(at: torch.Tensor, transform) -> float:
        at = at.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(model.discriminator(transform(at)).sum(), at)
        return grad.square().sum(dim=(1, 2, 3)).mean().item()

    torch.manual_seed(3)
    _, penalty, _ = model.technique(R1).discriminator_term(model, model.prepare_batch(reals), reals)
    # By hand, with the same transforms (same seed): D's gradient at the real images, through the augmentation
    # (stylegan2-ada-pytorch's R1) ...
    torch.manual_seed(3)
    assert penalty.item() == pytest.approx(squared_gradient_norm(reals, augment), rel=1e-5)
    # ... not at the augmented images, a different number when the transforms scale and rotate.
    torch.manual_seed(3)
    at_augmented = squared_gradient_norm(augment(reals).detach(), lambda x: x)
    assert at_augmented != pytest.approx(penalty.item(), rel=1e-3)
    model = StyleGAN2({**tiny, "augment": "ada", "ada_interval": 2, "ada_kimg": 0.1}, (1, 16, 16))
    fit(model, steps=4, shape=(1, 16, 16))
    step = 8 * 2 / 100  # batch 8, interval 2, ada_kimg 0.1
    assert any(model.augment_p.item() == pytest.approx(k * step, abs=1e-6) for k in (0, 1, 2))
    assert torch.isfinite(torch.cat([p.flatten() for p in model.parameters()])).all()
