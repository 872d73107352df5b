"""benchmarks/stylegan2_step.py times identical work: from the same initial model, seed and batches, its plain loop
and the framework end with the same weights, EMA copy, w_avg and path-length mean."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from stylegan2_step import build, ema_decay, framework_seconds_per_step, plain_seconds_per_step  # noqa: E402

from datamodules.digits import DigitsDataModule  # noqa: E402

TINY = {"latent_dim": 8, "w_dim": 8, "channel_base": 64, "channel_max": 8, "mapping_layers": 1}


@pytest.mark.parametrize("options", [{"pack": 1}, {"pack": 2}, {"pack": 1, "pl_weight": 2.0, "style_mixing": 0.9}],
                         ids=["unpacked", "packed", "pl-and-mixing"])
def test_plain_loop_and_framework_train_identically(options: dict, one_torch_thread) -> None:
    torch.manual_seed(0)
    template = build({**TINY, **options}, image_size=8)
    datamodule = DigitsDataModule(image_size=8, batch_size=4, limit=64)
    datamodule.setup()
    framework, plain = copy.deepcopy(template), copy.deepcopy(template)
    # 6 batches: R1 on batch 0 (every 16), path length on batches 0 and 4 (every 4), EMA ramping up throughout.
    torch.manual_seed(1)
    framework_seconds_per_step(framework, datamodule, steps=5, warmup=1)
    torch.manual_seed(1)
    plain_seconds_per_step(plain, datamodule, steps=5, warmup=1)
    trained, by_hand = framework.state_dict(), plain.state_dict()
    assert int(trained.pop("batches_seen")) == 6 and int(by_hand.pop("batches_seen")) == 0  # the framework's count
    assert trained.keys() == by_hand.keys()
    changed = [k for k in trained if not torch.equal(trained[k], by_hand[k])]
    assert not changed, changed
    moved = [k for k in trained if k.startswith("generator.") and not torch.equal(trained[k], template.state_dict()[k])]
    path_length = options.get("pl_weight", 0) > 0
    assert moved and ("pl_mean" in trained) == path_length  # they trained, and path length ran where it was on
    if path_length:
        assert float(trained["pl_mean"]) > 0


def test_ema_ramp_up_caps_the_half_life() -> None:
    # decay 0.99778 has a half-life of ln 0.5 / ln 0.99778 = 311.9 batches; ramp-up 0.05 caps it at 0.05 * batches.
    assert ema_decay(0.99778, 0.05, 0) == 0.0  # a copy on the first batch
    assert ema_decay(0.99778, 0.05, 100) == pytest.approx(0.5 ** (1 / 5))
    assert ema_decay(0.99778, 0.05, 10_000) == pytest.approx(0.99778)
    assert ema_decay(0.99778, None, 0) == 0.99778
