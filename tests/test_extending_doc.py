"""docs/extending.md's worked example runs as written: its code blocks define a technique and a variant, which
trains a few batches, logs its term, takes overrides and refuses bad values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from gan_lightning import registry
from gan_lightning.errors import ConfigError

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


@pytest.fixture(scope="module")
def example() -> dict:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 2, "the worked example is two python blocks: the code, then its use"
    namespace: dict = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)
    yield {**namespace, "use": blocks[1]}
    registry.MODELS.pop("r1_dcgan", None)


def test_the_example_trains_from_python_as_the_doc_shows(example: dict) -> None:
    namespace = dict(example)
    exec(compile(example["use"], str(DOC), "exec"), namespace)
    model = namespace["model"]
    assert model.config.r1_gamma == 10.0 and int(model.batches_seen) == 2
    assert [type(t).__name__ for t in model.active_techniques] == ["LatentPrior", "R1Penalty"]


def test_the_r1_term_is_the_squared_gradient_norm_on_real_data(example: dict) -> None:
    from gan_lightning.models.latent import LatentBatch

    torch.manual_seed(0)
    model = example["R1DCGAN"](latent_dim=4, width_g=4, width_d=4, sample_shape=(1, 28, 28), r1_gamma=3.0)
    real = torch.rand(4, 1, 28, 28) * 2 - 1
    name, value, weight = model.active_techniques[-1].discriminator_term(model, LatentBatch(real, None), None)
    x = real.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.discriminator(x).sum(), x)
    assert name == "r1" and weight == 1.5
    torch.testing.assert_close(value, (grad ** 2).sum(dim=(1, 2, 3)).mean())


def test_the_example_is_a_registered_model_with_its_own_key(example: dict, fake_mnist: Path, tmp_path: Path) -> None:
    import csv

    from gan_lightning.cli import main
    from tests.conftest import tiny_overrides

    assert registry.get_model_class("r1_dcgan") is example["R1DCGAN"]
    with pytest.raises(ConfigError, match=r"^model.r1_gamma: -1.0; accepted: a float >= 0$"):
        example["R1DCGAN"](sample_shape=(1, 28, 28), r1_gamma=-1.0)
    experiment = tmp_path / "r1.yaml"
    experiment.write_text("model: {name: r1_dcgan}\ndata: {name: mnist}\nrun: {name: r1}\n")
    run = tmp_path / "run"
    assert main(["train", str(experiment), *tiny_overrides(fake_mnist, run, steps=2), "model.r1_gamma=2.0"]) == 0
    rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
    assert all(float(r["train/r1"]) > 0 for r in rows if r.get("train/r1"))
    assert sum(bool(r.get("train/r1")) for r in rows) == 2
