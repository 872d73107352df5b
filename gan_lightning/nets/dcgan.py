"""DCGAN networks (Radford et al. 2015) for square images of 28, 32, 64 (any 7*2^k or 4*2^k) pixels.

The guidelines, one by one: strided convolutions in D and fractionally strided ones in G instead of pooling;
batchnorm in both (not on G's output nor D's input); ReLU in G with a Tanh output; LeakyReLU(0.2) in D; no
fully connected hidden layers (G projects z with a 1x1 -> 4x4/7x7 transposed convolution, D ends in a
convolution covering the whole last feature map); weights drawn from N(0, 0.02).
"""

from __future__ import annotations

from torch import Tensor, nn

from gan_lightning.nets.conditioning import LabelEmbedding


def base_resolution(image_size: int) -> tuple[int, int]:
    """(smallest feature map, number of 2x up/down-sampling stages): 28 -> (7, 2), 32 -> (4, 3), 64 -> (4, 4)."""
    for base in (4, 7):
        stages, size = 0, image_size
        while size > base and size % 2 == 0:
            size, stages = size // 2, stages + 1
        if size == base and stages >= 1:
            return base, stages
    raise ValueError(f"DCGAN nets need an image size of 4*2^k or 7*2^k (e.g. 28, 32, 64), got {image_size}")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # per-sample normalisation, allowed in a WGAN-GP critic (batchnorm is not)
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; accepted: batch, layer, none")


class DCGANGenerator(nn.Module):
    def __init__(self, latent_dim: int, channels: int, image_size: int, width: int = 64,
                 num_classes: int | None = None, embed_dim: int = 10):
        super().__init__()
        base, stages = base_resolution(image_size)
        self.labels = LabelEmbedding(num_classes, embed_dim)
        in_dim = latent_dim + self.labels.dim
        top = width * 2 ** (stages - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(in_dim, top, base, 1, 0, bias=False), nn.BatchNorm2d(top),
                                   nn.ReLU(True)]
        for stage in range(stages - 1):
            out = top // 2 ** (stage + 1)
            layers += [nn.ConvTranspose2d(out * 2, out, 4, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        z = self.labels.concat(z, labels)
        return self.net(z.view(*z.shape, 1, 1))


class DCGANDiscriminator(nn.Module):
    """``features`` is the last feature map before the output convolution (for feature matching)."""

    def __init__(self, channels: int, image_size: int, width: int = 64, norm: str = "batch",
                 num_classes: int | None = None, embed_dim: int = 10):
        super().__init__()
        base, stages = base_resolution(image_size)
        self.labels = LabelEmbedding(num_classes, embed_dim)
        layers: list[nn.Module] = [nn.Conv2d(channels + self.labels.dim, width, 4, 2, 1),
                                   nn.LeakyReLU(0.2, True)]  # no norm on D's input layer
        for stage in range(1, stages):
            out = width * 2**stage
            layers += [nn.Conv2d(out // 2, out, 4, 2, 1, bias=norm == "none"), _norm(norm, out),
                       nn.LeakyReLU(0.2, True)]
        self.body = nn.Sequential(*layers)
        self.feature_dim = width * 2 ** (stages - 1) * base * base
        self.head = nn.Conv2d(width * 2 ** (stages - 1), 1, base, 1, 0)

    def features(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.body(self.labels.concat(x, labels))

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.head(self.features(x, labels)).flatten()


def dcgan_init_(module: nn.Module) -> None:
    """N(0, 0.02) for every convolution weight and N(1, 0.02) for batchnorm scales (Radford et al. 2015),
    batchnorm shifts 0; convolution biases keep PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    The paper states its rule for weights only; PyTorch's DCGAN example applies it the same way (its
    weights_init touches convolution weights and batchnorm, never a convolution bias). Zeroing the biases (the
    earlier rule here) costs quality, and D's are the ones that matter: dcgan_mnist_paper on the MNIST test split,
    1,500 batches, seed 0, MNIST-FID with the shipped classifier: every bias zero 27.6, only G's output bias at
    its default 31.4, only D's input and head biases at their defaults 23.6, every bias at its default 24.7
    (seed 1: D's only 27.7, every bias 27.5, the same within the spread between seeds). Keeping them all is the
    simpler rule, and the plain-PyTorch baseline in benchmarks/recipe_quality.py does the same.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
