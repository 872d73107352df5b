"""Conditioning on several binary attributes at once (CelebA): multi-hot labels through embeddings, grids, draws."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_lightning.models.cgan import CGAN
from gan_lightning.nets.conditioning import embed_labels

NAMES = ["Smiling", "Male", "Eyeglasses"]
TINY = {"width_g": 4, "width_d": 4, "latent_dim": 4}


def attribute_cgan(**config) -> CGAN:
    torch.manual_seed(0)
    return CGAN({**TINY, **config}, (1, 28, 28), num_classes=3, label_names=NAMES, multi_label=True)


def test_multi_hot_labels_embed_as_the_sum_of_their_attributes() -> None:
    embedding = nn.Embedding(3, 5)
    one_hot = torch.eye(3)
    assert torch.equal(embed_labels(embedding, one_hot), embedding(torch.arange(3)))  # a one-hot is its class
    both = embed_labels(embedding, torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]))
    assert torch.allclose(both[0], embedding.weight[0] + embedding.weight[2])
    assert torch.equal(both[1], torch.zeros(5))


@pytest.mark.parametrize("projection", [False, True])
def test_generator_and_discriminator_follow_the_attributes(projection: bool) -> None:
    model = attribute_cgan(projection=projection)
    z = torch.randn(4, 4)
    smiling = model.labels_for(4, torch.tensor([1.0, 0.0, 0.0]), nrow=4)
    male = model.labels_for(4, torch.tensor([0.0, 1.0, 0.0]), nrow=4)
    assert smiling.tolist() == [[1.0, 0.0, 0.0]] * 4
    assert not torch.allclose(model.generate(z, smiling), model.generate(z, male))
    x = torch.randn(4, 1, 28, 28)
    model.discriminator.eval()
    assert not torch.allclose(model.discriminator(x, smiling), model.discriminator(x, male))
    if projection:  # the projection term is <embed(y), f(x)>: additive in the attributes
        none = torch.zeros(4, 3)
        gap = model.discriminator(x, smiling + male) - model.discriminator(x, none)
        parts = (model.discriminator(x, smiling) - model.discriminator(x, none)
                 + model.discriminator(x, male) - model.discriminator(x, none))
        assert torch.allclose(gap, parts, atol=1e-5)


def test_grid_rows_enumerate_attribute_combinations() -> None:
    labels = attribute_cgan().fixed_labels(16, nrow=2)
    rows = labels.view(8, 2, 3)
    assert torch.equal(rows[:, 0], rows[:, 1])  # one combination per row
    assert rows[:, 0].tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 1],
                                   [1, 1, 1]]


def test_drawn_attributes_follow_the_label_prior() -> None:
    model = attribute_cgan()
    assert model.label_prior.tolist() == [0.5, 0.5, 0.5]  # before fit: uniform
    model.label_prior.copy_(torch.tensor([1.0, 0.0, 0.25]))
    draws = model.sample_labels(4000, torch.Generator().manual_seed(0))
    assert draws[:, 0].sum() == 4000 and draws[:, 1].sum() == 0
    assert abs(float(draws[:, 2].mean()) - 0.25) < 0.03  # binomial std 0.007
    again = model.sample_labels(4000, torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)
    assert "label_prior" in model.state_dict()  # travels with checkpoints


def test_single_label_models_keep_class_labels() -> None:
    model = CGAN(TINY, (1, 28, 28), num_classes=2, label_names=["Smiling"])
    assert not model.multi_label and model.label_prior is None
    assert model.fixed_labels(4, nrow=2).tolist() == [0, 0, 1, 1]
    assert model.sample_labels(8, torch.Generator().manual_seed(0)).dtype == torch.long
