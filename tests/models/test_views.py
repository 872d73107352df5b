"""Model-owned views: grids, metrics and `sample` see a model only through preview / eval_samples / draw_samples."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch
from omegaconf import OmegaConf
from PIL import Image

from gan_lightning.callbacks.samples import SampleGrid
from gan_lightning.config import MetricsCallbackConfig
from gan_lightning.evaluation import evaluate
from gan_lightning.models import CGAN, DCGAN
from gan_lightning.models.base import Preview


def tiny_dcgan() -> DCGAN:
    torch.manual_seed(0)
    return DCGAN({"width_g": 4, "width_d": 4, "latent_dim": 4}, (1, 28, 28))


def test_latent_preview_is_g_on_fixed_latents_and_repeats() -> None:
    model = tiny_dcgan()
    first, second = model.preview(6, 3), model.preview(6, 3)
    z, _ = model.fixed_inputs(6, nrow=3)
    assert first.nrow == 3 and torch.equal(first.images, second.images)
    assert torch.equal(first.images, model.generate(z))


def test_conditional_views_put_one_class_per_row() -> None:
    model = CGAN({"width_g": 4, "width_d": 4, "latent_dim": 4}, (1, 28, 28), num_classes=10)
    z = model.sample_latent(6, torch.Generator().manual_seed(5))
    assert torch.equal(model.draw_samples(6, seed=5, nrow=3), model.generate(z, torch.tensor([0, 0, 0, 1, 1, 1])))
    assert torch.equal(model.draw_samples(6, seed=5, label=7), model.generate(z, torch.full((6,), 7)))


def test_eval_samples_are_seeded_batches() -> None:
    model = tiny_dcgan()
    batches = list(model.eval_samples(10, 4, seed=3))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert torch.equal(torch.cat(batches), torch.cat(list(model.eval_samples(10, 4, seed=3))))
    assert not torch.equal(torch.cat(batches), torch.cat(list(model.eval_samples(10, 4, seed=4))))


class RowsModel(DCGAN):
    """A model whose views are not latent samples (as a translation model's are): three named rows of constants."""

    def preview(self, n, nrow, datamodule=None) -> Preview:
        rows = [torch.full((nrow, 1, 28, 28), value) for value in (-1.0, 0.0, 1.0)]
        return Preview(torch.cat(rows), nrow, ("input", "output", "reconstruction"))

    def eval_samples(self, n, batch_size, seed, datamodule=None):
        yield datamodule.real_samples(n)  # "translations" that equal the targets: FID 0


def test_grids_and_metrics_use_only_the_model_views(fake_mnist: Path, tmp_path: Path) -> None:
    from datamodules.mnist import MNISTDataModule

    model = RowsModel({"width_g": 4, "width_d": 4, "latent_dim": 4}, (1, 28, 28))
    datamodule = MNISTDataModule(root=str(fake_mnist), download=False, split="train", batch_size=8, limit=64)
    trainer = SimpleNamespace(global_step=5, datamodule=datamodule, loggers=[])
    path = SampleGrid(tmp_path, n=64, nrow=4).run(trainer, model)
    grid = torch.tensor(list(Image.open(path).convert("L").getdata()), dtype=torch.float32).view(3 * 30 + 2, -1)
    assert grid.shape == (92, 4 * 30 + 2)  # three rows of four, 2-pixel padding: the model's rows, not 64 samples
    assert [grid[2 + 30 * r + 14, 2 + 14].item() for r in range(3)] == [0.0, 128.0, 255.0]
    settings = OmegaConf.structured(MetricsCallbackConfig(metrics="fid", extractor="mnist", n_samples=64, n_real=64,
                                                          batch_size=32, seed=0, cache_dir=str(tmp_path / "cache")))
    scores = evaluate(model, datamodule, settings)
    assert abs(scores["fid"]) < 1e-6  # eval_samples gave the real images themselves
