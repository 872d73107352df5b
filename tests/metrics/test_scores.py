"""ImageScores, the torchmetrics Metric: pinned FID/IS/KID values, sample order, non-finite refusal, and use inside a
user's own LightningModule under a Trainer."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from gan_lightning.metrics import MetricOptions, MetricsError, StatsKey, compute_metrics, extract, real_statistics
from gan_lightning.metrics.extractors import ExtractorOutput
from gan_lightning.metrics.math import feature_statistics
from gan_lightning.metrics.scores import ImageScores
from gan_lightning.metrics.stats import RealStats, scores_from_output
from tests.metrics.conftest import TinyExtractor

# Recorded with the FID/IS/KID code as it stood before the scores became a torchmetrics Metric (and before the k-NN
# metrics were added): refactors of the metric layer must not move them.
PINNED = {"fid": 1.6297592726181094, "is": 3.05920391359712, "is_std": 0.31018995966905366,
          "kid": 0.25799822692084273, "kid_std": 0.047511268127968485,
          "precision": 0.965, "recall": 0.4766666666666667, "density": 1.725, "coverage": 0.9233333333333333}


def test_fid_is_kid_are_pinned_on_fixed_features() -> None:
    g = torch.Generator().manual_seed(2024)
    real = torch.randn(300, 12, generator=g)
    fake = ExtractorOutput(0.8 * torch.randn(200, 12, generator=g) + 0.25, 3 * torch.randn(200, 7, generator=g))
    mu, sigma = feature_statistics(real)
    stats = RealStats(StatsKey("pinned", "all", 8, "fixed", 300), mu, sigma, real)
    scores = scores_from_output(fake, stats, "fid,is,kid,precision,recall,density,coverage",
                                MetricOptions(kid_subsets=20, kid_subset_size=100))
    assert scores == pytest.approx(PINNED, rel=1e-12, abs=1e-14)


def _images(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, 8, 8, generator=g) * 1.6 - 0.8 + shift).clamp(-1, 1)


@pytest.fixture
def real(tiny, tmp_path):
    images = _images(120, 0)
    key = StatsKey("fake", "train", 8, tiny.name, num_samples=len(images))
    return real_statistics(key, lambda: extract(tiny, images).features, cache_dir=tmp_path)


METRICS = "fid,is,kid,precision,recall,density,coverage"
OPTIONS = MetricOptions(is_splits=3, kid_subsets=10, kid_subset_size=50)


def test_the_metric_equals_compute_metrics_and_restores_the_sample_order(tiny, real) -> None:
    fake = _images(90, 1, shift=0.2)
    expected = compute_metrics(fake, real, tiny, METRICS, batch_size=30, options=OPTIONS)
    in_order = ImageScores(tiny, METRICS, real, OPTIONS)
    for batch in fake.split(30):
        in_order.update(batch)
    assert in_order.compute() == expected  # the same floats: the same features in the same order
    # Batches arriving out of order (as from DDP ranks) with their positions: the same numbers again, although
    # IS's splits and KID's subsets depend on the order.
    shuffled = ImageScores(tiny, METRICS, real, OPTIONS)
    for start in (60, 0, 30):
        shuffled.update(fake[start:start + 30], torch.arange(start, start + 30))
    assert shuffled.compute() == expected
    without = ImageScores(tiny, "kid", real, OPTIONS)
    for start in (60, 0, 30):
        without.update(fake[start:start + 30])
    assert without.compute()["kid"] != expected["kid"]  # arrival order: other KID subsets, the order matters
    in_order.reset()
    with pytest.raises(MetricsError, match="no images to evaluate"):
        in_order.compute()


def test_a_non_finite_batch_is_refused_at_compute(tiny, real) -> None:
    scores = ImageScores(tiny, "fid", real)
    broken = _images(10, 2)
    broken[3, 0, 0, 0] = float("nan")
    scores.update(_images(10, 3))
    scores.update(broken)  # no error here: under DDP the other ranks would wait for this one in the gather
    assert int(scores.non_finite) == 10
    with pytest.raises(MetricsError, match="non-finite samples"):
        scores.compute()


def test_scores_without_real_statistics_or_with_another_extractors_are_refused(tiny, real) -> None:
    scores = ImageScores(tiny, "fid", None)
    scores.update(_images(10, 3))
    with pytest.raises(MetricsError, match="need real statistics"):
        scores.compute()
    other = ImageScores(TinyExtractor(seed=1), "kid", real)
    other.extractor.name = "tiny-retrained"
    other.update(_images(10, 3))
    with pytest.raises(MetricsError, match="not 'tiny-retrained'"):
        other.compute()


class _UserGAN(L.LightningModule):
    """A user's own module: a fixed 'generator' and the metric as an attribute, logged at the end of validation."""

    def __init__(self, real: RealStats) -> None:
        super().__init__()
        self.generator = torch.nn.Linear(4, 3 * 8 * 8)
        self.scores = ImageScores(TinyExtractor(), "fid,kid,recall,coverage", real, OPTIONS)

    def forward(self, z):
        return torch.tanh(self.generator(z)).view(-1, 3, 8, 8)

    def validation_step(self, batch, batch_idx):
        self.scores.update(self(batch[0]))

    def on_validation_epoch_end(self):
        self.log_dict({f"val/{name}": value for name, value in self.scores.compute().items()})
        self.scores.reset()


def test_usable_in_a_users_lightning_module_under_a_trainer(real) -> None:
    torch.manual_seed(0)
    module = _UserGAN(real)
    assert module.scores.extractor in module.modules()  # a submodule: moved with the LightningModule
    latents = torch.randn(64, 4, generator=torch.Generator().manual_seed(4))
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.validate(module, DataLoader(TensorDataset(latents), batch_size=16))
    with torch.no_grad():
        expected = compute_metrics(module(latents), real, TinyExtractor(), "fid,kid,recall,coverage", options=OPTIONS)
    logged = {key: float(value) for key, value in trainer.callback_metrics.items()}
    assert logged == pytest.approx({f"val/{name}": value for name, value in expected.items()}, rel=1e-6)
