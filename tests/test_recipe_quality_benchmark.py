"""benchmarks/recipe_quality.py: its plain loops do the framework's work on the framework's batches."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf

from gan_lightning.config import load_experiment
from gan_lightning.train import build_datamodule, build_model
from tests.conftest import write_fake_mnist

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from recipe_quality import PLAIN_RECIPES, PlainRecipe, build_plain, read_mnist, train_plain  # noqa: E402

SEED, STEPS, LIMIT, BATCH = 3, 5, 24, 8  # 3 batches per epoch: the 5 steps cross into a second epoch


class Recorder(L.Callback):
    def __init__(self):
        self.batches, self.losses = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append((batch[0].clone(), batch[1].clone()))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        # train/g_loss is this batch's only on the batches with a G step (n_critic rhythm)
        g_step = (trainer.global_step % pl_module.config.n_critic) == 0
        metrics = trainer.callback_metrics
        self.losses.append((float(metrics["train/d_loss"]), float(metrics["train/g_loss"]) if g_step else None))


TINY = {"dcgan": ["model.width_g=4", "model.width_d=4"], "mlp": ["model.hidden_g=[8,16]", "model.hidden_d=[16,8]"]}


def tiny_plain(experiment: str) -> PlainRecipe:
    return replace(PLAIN_RECIPES[experiment], latent_dim=8, width_g=4, width_d=4, hidden_g=(8, 16), hidden_d=(16, 8),
                   batch_size=BATCH)


def framework_steps(experiment: str, root: Path) -> tuple[L.LightningModule, Recorder, list[torch.Tensor], list]:
    config = load_experiment(experiment, [f"data.root={root}", "data.split=test", "data.download=false",
                                          f"data.batch_size={BATCH}", f"data.limit={LIMIT}",
                                          *TINY[PLAIN_RECIPES[experiment].arch], "model.latent_dim=8",
                                          f"run.seed={SEED}"])
    L.seed_everything(SEED, verbose=False)  # as gan_lightning.train.train does before building
    datamodule = build_datamodule(config)
    model = build_model(config, datamodule)
    initial = [p.detach().clone() for p in [*model.generator.parameters(), *model.discriminator.parameters()]]
    latents, sample_latent = [], model.sample_latent

    def recording_sample_latent(n, generator=None):
        z = sample_latent(n, generator)
        latents.append(z.clone())
        return z

    model.sample_latent = recording_sample_latent
    recorder = Recorder()
    trainer = L.Trainer(max_steps=STEPS, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[recorder])
    trainer.fit(model, datamodule=datamodule)
    return model, recorder, latents, initial


@pytest.mark.parametrize("experiment", sorted(PLAIN_RECIPES))
def test_plain_loop_sees_the_framework_batches_latents_and_weights(experiment: str, tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_fake_mnist(root, split="test", n=64)
    model, recorder, latents, initial = framework_steps(experiment, root)

    recipe = tiny_plain(experiment)
    images, labels = read_mnist(root)
    plain = []
    train_plain(recipe, images[:LIMIT], labels[:LIMIT], SEED, STEPS,
                on_step=lambda step, real, y, z, d, g: plain.append((real, y, z, d, g)))
    G, D = build_plain(recipe, SEED)  # the plain run's initial weights
    plain_initial = [*G.parameters(), *D.parameters()]
    assert len(plain_initial) == len(initial)
    for plain_param, framework_param in zip(plain_initial, initial, strict=True):
        assert torch.equal(plain_param.detach(), framework_param)
    assert len(plain) == len(recorder.batches) == len(latents) == STEPS
    for (real, y, z, d_loss, g_loss), (f_real, f_y), f_z, (f_d, f_g) in zip(
            plain, recorder.batches, latents, recorder.losses, strict=True):
        assert torch.equal(real, f_real) and torch.equal(y, f_y)
        assert torch.equal(z, f_z)
        # same layers, same initial weights, same losses and optimiser: the same numbers, step after step
        assert d_loss == pytest.approx(f_d, rel=1e-5, abs=1e-6)
        assert (g_loss is None) == (f_g is None) and (g_loss is None or g_loss == pytest.approx(f_g, rel=1e-5,
                                                                                                abs=1e-6))
    # the second epoch is a new permutation, not a repeat of the first
    assert not torch.equal(recorder.batches[3][0], recorder.batches[0][0])


def test_plain_recipes_match_the_shipped_experiments() -> None:
    """The plain loops are written out by hand; they must still describe the recipes they are compared with."""
    for experiment, recipe in PLAIN_RECIPES.items():
        config = OmegaConf.to_container(load_experiment(experiment))
        model, data = config["model"], config["data"]
        if recipe.arch == "dcgan":
            assert (model["width_g"], model["width_d"], model["d_norm"]) == (recipe.width_g, recipe.width_d,
                                                                              recipe.d_norm)
        else:
            assert (tuple(model["hidden_g"]), tuple(model["hidden_d"]), model["dropout_d"]) == (
                recipe.hidden_g, recipe.hidden_d, recipe.dropout_d)
        assert model["latent_dim"] == recipe.latent_dim
        assert (model["lr_g"], model["lr_d"]) == (recipe.lr_g, recipe.lr_d)
        if recipe.optimizer == "adam":
            assert (model["beta1"], model["beta2"]) == recipe.betas
        assert (model["loss"], model["n_critic"], model["optimizer"]) == (recipe.loss, recipe.n_critic,
                                                                          recipe.optimizer)
        assert (model["spectral_norm_d"], model["gradient_penalty"], model["weight_clip"]) == (
            recipe.spectral_norm, recipe.gradient_penalty, recipe.weight_clip)
        assert (model["real_label"], model["pack"], model["weight_decay"]) == (1.0, 1, 0.0)
        assert data["batch_size"] == recipe.batch_size
        assert model["ema_decay"] == recipe.ema_decay and model["ema_start"] == 0
        assert (model["name"] == "cgan") == recipe.conditional


def test_recipes_without_a_plain_loop_are_refused_in_one_line(monkeypatch, capsys) -> None:
    import recipe_quality

    monkeypatch.setattr(sys, "argv", ["recipe_quality.py", "--experiments", "dcgan_mnist", "gan_grid"])
    assert recipe_quality.main() == 2
    assert capsys.readouterr().err == f"error: no plain loop for gan_grid; available: {', '.join(PLAIN_RECIPES)}\n"


@pytest.mark.parametrize("experiment", sorted(PLAIN_RECIPES))
def test_a_plain_generator_is_scored_on_the_framework_evaluation_samples(experiment: str, tmp_path: Path) -> None:
    """The plain side is scored through the framework's evaluate on the same seeded latents (and labels)."""
    from recipe_quality import Scored

    from datamodules.mnist import MNISTConfig, MNISTDataModule
    from gan_lightning.config import MetricsCallbackConfig
    from gan_lightning.evaluation import evaluate

    root = tmp_path / "data"
    write_fake_mnist(root, split="test", n=64)
    generator, _ = build_plain(tiny_plain(experiment), SEED)
    real = MNISTDataModule(OmegaConf.structured(MNISTConfig(root=str(root), split="test", download=False)))
    settings = OmegaConf.structured(MetricsCallbackConfig(enabled=True, n_samples=30, batch_size=16, n_real=64,
                                                          extractor="mnist", cache_dir=str(tmp_path / "cache")))
    scored = Scored(generator, tiny_plain(experiment))
    scores = evaluate(scored, real, settings)
    assert scores["n_samples"] == 30 and sum(scores["class_histogram"]) == 30
    # The samples scored are G on the latents (and labels) the framework's evaluation draws from seed 0.
    draws = torch.Generator().manual_seed(settings.seed)
    z = scored.sample_latent(16, draws)
    labels = scored.sample_labels(16, draws)
    assert torch.equal(next(iter(scored.eval_samples(30, 16, settings.seed))), scored.generate(z, labels))
