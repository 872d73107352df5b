"""Training techniques, one small object each (see ``base.Technique``). ``LATENT_GAN_TECHNIQUES`` is their order
of application for latent GANs: surgery, loss terms and after-step work run in this order (weight clipping before
the historical average sees the weights; the penalty before the average's term in D's loss; augmentation after
packing, which it unpacks to transform each sample on its own)."""

from gan_lightning.techniques.augmentation import Augmentation
from gan_lightning.techniques.base import LossTerm, Technique
from gan_lightning.techniques.ema import EMA
from gan_lightning.techniques.feature_matching import FeatureMatching
from gan_lightning.techniques.gradient_penalty import GradientPenalty
from gan_lightning.techniques.historical_averaging import HistoricalAveraging
from gan_lightning.techniques.label_smoothing import LabelSmoothing
from gan_lightning.techniques.latent_prior import LatentPrior
from gan_lightning.techniques.minibatch_discrimination import MinibatchDiscrimination
from gan_lightning.techniques.packing import Packing
from gan_lightning.techniques.spectral_norm import SpectralNorm
from gan_lightning.techniques.virtual_batch_norm import VirtualBatchNorm
from gan_lightning.techniques.weight_clipping import WeightClipping

LATENT_GAN_TECHNIQUES = (LatentPrior, Packing, LabelSmoothing, MinibatchDiscrimination, SpectralNorm, WeightClipping,
                         GradientPenalty, FeatureMatching, HistoricalAveraging, VirtualBatchNorm, EMA, Augmentation)

__all__ = ["EMA", "Augmentation", "LATENT_GAN_TECHNIQUES", "FeatureMatching", "GradientPenalty", "HistoricalAveraging",
           "LabelSmoothing", "LatentPrior", "LossTerm", "MinibatchDiscrimination", "Packing", "SpectralNorm",
           "Technique", "VirtualBatchNorm", "WeightClipping"]
