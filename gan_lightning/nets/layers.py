"""Layers from the "improved techniques" and stabilisation literature, as plain nn.Modules and functions.

- ``MinibatchDiscrimination`` (``add_minibatch_discrimination`` puts it before a D's head), ``VirtualBatchNorm``
  (``use_virtual_batch_norm`` swaps it into a G) and ``HistoricalAverages``: Salimans et al. 2016.
- ``spectral_norm_all``: Miyato et al. 2018 (SNGAN), applied to every Conv/Linear of a network.
- ``pack_samples``: PacGAN (Lin et al. 2018).

No Lightning imports (DESIGN.md section 2): models decide when to call these.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

# --- Minibatch discrimination ------------------------------------------------------------------------------


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016, section 3.2: lets D look at the whole batch, so a collapsed G is easy to spot.

    M_i = x_i T reshaped to (num_kernels, kernel_dim); c_b(x_i, x_j) = exp(-||M_{i,b} - M_{j,b}||_1);
    o(x_i)_b = sum_{j != i} c_b(x_i, x_j). Output: cat([x, o(x)], dim=1), width in_features + num_kernels.

    Self-pairs are excluded (the paper's sum includes j = i, which only adds the constant 1 to every
    feature): then o = 0 for a batch of far-apart samples and N - 1 for N identical ones, which reads
    directly as "how many near-duplicates does this sample have".
    """

    def __init__(self, in_features: int, num_kernels: int, kernel_dim: int) -> None:
        super().__init__()
        self.in_features, self.num_kernels, self.kernel_dim = in_features, num_kernels, kernel_dim
        # std 1/sqrt(in_features) keeps ||M_i - M_j||_1 O(kernel_dim) for unit-scale features, so exp(-.)
        # neither vanishes for every pair nor sits at 1 at initialisation.
        self.T = nn.Parameter(torch.randn(in_features, num_kernels * kernel_dim) / in_features**0.5)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"MinibatchDiscrimination expects (N, {self.in_features}), got {tuple(x.shape)}")
        m = (x @ self.T).view(-1, self.num_kernels, self.kernel_dim).transpose(0, 1)  # (B, N, C)
        c = torch.exp(-torch.cdist(m, m, p=1))  # (B, N, N); the diagonal is exp(0) = 1
        o = c.sum(dim=2).transpose(0, 1) - 1.0  # drop the self-pair -> (N, B)
        return torch.cat([x, o], dim=1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_kernels={self.num_kernels}, kernel_dim={self.kernel_dim}"


# --- Virtual batch normalisation ---------------------------------------------------------------------------


class VirtualBatchNorm(nn.Module):
    """Salimans et al. 2016, section 3.4: batch norm whose statistics come from a fixed reference batch.

    Each example x_i is normalised with the statistics of reference ∪ {x_i}: with R reference examples,
    mean = (1/(R+1)) mean(x_i) + (R/(R+1)) mean(ref), same for the mean of squares, var = E[x^2] - E[x]^2
    (biased, like batch norm). For (N, C, H, W) inputs the "mean of x_i" is over its H*W positions, per
    channel. So the output for x_i never depends on the other examples of its batch, which is the point.
    The reference batch itself is normalised by its own statistics (plain batch norm), as in the reference
    implementation (OpenAI's improved-gan).

    Where the statistics come from (the reference batch must flow through the *preceding* layers):

    1. Per step, live (recommended for training, what the paper does). The model owning the network holds a
       fixed reference input ``ref_z`` (e.g. a registered buffer) and runs it first::

           with reference_batch(generator):
               generator(ref_z)          # every VBN layer records the reference statistics
               fake = generator(z)       # normalised with reference ∪ {x_i}

       or ``fake = forward_with_reference(generator, z, ref_z)``. Inside the block, gradients flow through
       the reference statistics (as they depend on the current weights); the reference pass costs one
       extra forward of R examples, which is why the paper uses VBN in G only.
    2. Stored. Outside such a block the layer uses the last recorded statistics, kept (detached) in
       buffers, so plain ``generator(z)`` works for sampling and after loading a checkpoint. If nothing
       was ever recorded, the first forward's batch becomes the reference (call ``set_reference`` to pick
       it explicitly).
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("ref_mean", torch.zeros(num_features))
        self.register_buffer("ref_mean_sq", torch.ones(num_features))
        self.register_buffer("ref_size", torch.zeros((), dtype=torch.long))  # 0 = no reference yet
        # Live (graph-carrying) statistics: set only inside reference_batch() and cleared on exit, so
        # state_dicts and deepcopies (EMA) outside a block only ever see the detached buffers.
        self._live: tuple[Tensor, Tensor] | None = None
        self._recording = False
        self._has_reference = False  # Python mirror of ref_size > 0: no device sync per forward

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._has_reference = bool(self.ref_size > 0)

    def _check(self, x: Tensor) -> None:
        if x.dim() not in (2, 4) or x.shape[1] != self.num_features:
            raise ValueError(f"VirtualBatchNorm({self.num_features}) expects (N, C) or (N, C, H, W) with "
                             f"C = {self.num_features}, got {tuple(x.shape)}")

    @staticmethod
    def _per_example(x: Tensor) -> tuple[Tensor, Tensor]:
        """Per-example, per-channel mean and mean of squares, shape (N, C), in at least float32 (x^2 of
        half-precision activations overflows above 256 under AMP)."""
        flat = (x.flatten(2) if x.dim() == 4 else x.unsqueeze(2)).to(torch.promote_types(x.dtype, torch.float32))
        return flat.mean(2), flat.pow(2).mean(2)

    def _normalise(self, x: Tensor, mean: Tensor, mean_sq: Tensor) -> Tensor:
        """(x - mean) / sqrt(var + eps) * weight + bias, with mean/mean_sq of shape (C,) or (N, C)."""
        var = (mean_sq - mean**2).clamp_min(0.0)  # E[x^2] - E[x]^2 can dip below 0 by rounding
        shape = mean.shape + (1,) * (x.dim() - 2)
        out = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        affine_shape = (1, -1) + (1,) * (x.dim() - 2)
        return (out * self.weight.view(affine_shape) + self.bias.view(affine_shape)).to(x.dtype)

    def set_reference(self, x: Tensor) -> Tensor:
        """Record ``x`` (this layer's input) as the reference batch; return it batch-normalised by itself."""
        self._check(x)
        ex_mean, ex_mean_sq = self._per_example(x)
        mean, mean_sq = ex_mean.mean(0), ex_mean_sq.mean(0)
        self.ref_mean.copy_(mean.detach())
        self.ref_mean_sq.copy_(mean_sq.detach())
        self.ref_size.fill_(x.shape[0])
        self._has_reference = True
        if self._recording:
            self._live, self._recording = (mean, mean_sq), False
        return self._normalise(x, mean, mean_sq)

    def forward(self, x: Tensor) -> Tensor:
        if self._recording or not self._has_reference:
            return self.set_reference(x)
        self._check(x)
        ref_mean, ref_mean_sq = self._live if self._live is not None else (self.ref_mean, self.ref_mean_sq)
        new = 1.0 / (self.ref_size + 1.0)  # x_i's weight in reference ∪ {x_i}; a tensor op, no sync
        ex_mean, ex_mean_sq = self._per_example(x)
        mean = new * ex_mean + (1.0 - new) * ref_mean
        mean_sq = new * ex_mean_sq + (1.0 - new) * ref_mean_sq
        return self._normalise(x, mean, mean_sq)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


@contextmanager
def reference_batch(net: nn.Module) -> Iterator[None]:
    """Within the block, the next forward through each VBN layer of ``net`` records the reference batch;
    later forwards use those live statistics. On exit the live statistics are dropped (buffers stay)."""
    layers = [m for m in net.modules() if isinstance(m, VirtualBatchNorm)]
    for layer in layers:
        layer._recording, layer._live = True, None
    try:
        yield
    finally:
        for layer in layers:
            layer._recording, layer._live = False, None


def forward_with_reference(net: nn.Module, x: Tensor, ref: Tensor) -> Tensor:
    """``net(x)`` with VBN statistics from ``net(ref)`` under the current weights (single-input nets)."""
    with reference_batch(net):
        net(ref)
        return net(x)


# --- Spectral normalisation --------------------------------------------------------------------------------

SPECTRAL_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
)


def spectral_norm_all(module: nn.Module, n_power_iterations: int = 1,
                      types: tuple[type[nn.Module], ...] = SPECTRAL_NORM_TYPES) -> nn.Module:
    """Parametrise the weight of every Conv/Linear in ``module`` by W / sigma(W) (SNGAN); returns ``module``.

    Uses torch.nn.utils.parametrizations.spectral_norm (one power iteration per training forward, as in
    the paper; ConvTranspose gets dim=1 automatically). Layers already parametrised are left alone, so
    calling it twice is harmless. Add nn.Embedding to ``types`` for a projection discriminator.
    """
    targets = [m for m in module.modules()
               if isinstance(m, types) and not parametrize.is_parametrized(m, "weight")]
    for m in targets:  # collected first: registering a parametrization adds submodules
        spectral_norm(m, n_power_iterations=n_power_iterations)
    return module


# --- Packing (PacGAN) --------------------------------------------------------------------------------------


def pack_samples(x: Tensor, m: int) -> Tensor:
    """Lin et al. 2018: group m consecutive samples into one by concatenating them along dim 1.

    (N, C, ...) -> (N/m, m*C, ...): packed sample k holds x[k*m], ..., x[k*m + m - 1] in that channel
    order. A packed discriminator therefore takes m times the input channels (images: in_channels = m*C;
    2-D points through an MLP: in_features = 2m) and returns one score per pack; real and fake batches are
    packed separately (a pack is all-real or all-fake) and labels are per pack. m = 1 is the identity.
    """
    if m < 1:
        raise ValueError(f"pack_samples: pack size m must be >= 1, got {m}")
    n = x.shape[0]
    if n % m != 0:
        raise ValueError(f"pack_samples: batch size {n} is not divisible by pack size m={m}; "
                         f"use a batch size that is a multiple of {m} (drop_last=True in the DataLoader)")
    return x.reshape(n // m, m * x.shape[1], *x.shape[2:])


def add_minibatch_discrimination(net: nn.Module, num_kernels: int, kernel_dim: int) -> nn.Module:
    """Put a MinibatchDiscrimination layer between a discriminator's ``features`` and its output.

    ``net`` must have ``feature_dim`` (the flattened size of ``features(x)``) and a ``head`` applied to those
    features; the head becomes flatten -> MinibatchDiscrimination -> Linear(feature_dim + B, 1), whose
    (N, 1) output every discriminator here already squeezes to one score per sample.
    """
    if not (hasattr(net, "feature_dim") and hasattr(net, "head")):
        raise ValueError(f"{type(net).__name__} has no feature_dim/head to put minibatch discrimination before")
    net.head = nn.Sequential(nn.Flatten(1), MinibatchDiscrimination(net.feature_dim, num_kernels, kernel_dim),
                             nn.Linear(net.feature_dim + num_kernels, 1))
    return net


def use_virtual_batch_norm(net: nn.Module) -> int:
    """Replace every BatchNorm1d/2d of ``net`` by a VirtualBatchNorm with the same affine weights.

    Returns how many layers were replaced (0: the network had no batch norm to make virtual).
    """
    replaced = 0
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
                vbn = VirtualBatchNorm(child.num_features, eps=child.eps)
                if child.affine:
                    with torch.no_grad():
                        vbn.weight.copy_(child.weight)
                        vbn.bias.copy_(child.bias)
                setattr(parent, name, vbn)
                replaced += 1
    return replaced


# --- Historical averaging ----------------------------------------------------------------------------------


class HistoricalAverages(nn.Module):
    """Salimans et al. 2016, section 3.3: the running mean of each parameter over all past updates.

    Groups of parameters (``{"d": [...], "g": [...]}``) are averaged separately; the averages are buffers,
    so they are checkpointed (exact resume) and follow the module across devices. The mean includes the
    initial weights: after t updates it is the mean of theta_0 .. theta_t.
    """

    def __init__(self, groups: dict[str, list[nn.Parameter]]) -> None:
        super().__init__()
        self.sizes = {name: len(params) for name, params in groups.items()}
        for name, params in groups.items():
            self.register_buffer(f"{name}_count", torch.ones((), dtype=torch.long))
            for i, param in enumerate(params):
                self.register_buffer(f"{name}_{i}", param.detach().clone())

    def averages(self, group: str) -> list[Tensor]:
        return [getattr(self, f"{group}_{i}") for i in range(self.sizes[group])]

    @torch.no_grad()
    def update(self, group: str, params: list[nn.Parameter]) -> None:
        count = getattr(self, f"{group}_count")
        count += 1
        for average, param in zip(self.averages(group), params, strict=True):
            average.add_((param.detach() - average) / count)


# --- Image pool ----------------------------------------------------------------------------------------------


class ImagePool:
    """A buffer of past fakes for the discriminator (Shrivastava et al. 2017; CycleGAN keeps 50).

    Each fake of a batch fills the pool while it has room and is passed through; once the pool is full, with
    probability ``swap_prob`` a fake is swapped for a random stored one (D sees the old one), else it passes.
    Updating D on a history of generated images, not only the latest, damps the oscillation between G and D.

    The draws come from the pool's own seeded generator, and ``state_dict`` holds the stored images and that
    generator's state: a model saves it with its checkpoint, so a resumed run draws exactly what an uninterrupted
    one would. Not an ``nn.Module``: its size changes while it fills, which a fixed state-dict shape cannot hold.
    """

    def __init__(self, size: int = 50, swap_prob: float = 0.5, seed: int = 0) -> None:
        if size < 0 or not 0.0 <= swap_prob <= 1.0:
            raise ValueError(f"pool size must be >= 0 and swap_prob in [0, 1], got {size}, {swap_prob}")
        self.size, self.swap_prob = size, swap_prob
        self.images: list[Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def query(self, fakes: Tensor) -> Tensor:
        """The batch D should see in place of ``fakes`` (detached)."""
        fakes = fakes.detach()
        if self.size == 0:
            return fakes
        out = []
        for image in fakes:
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif float(torch.rand((), generator=self.generator)) < self.swap_prob:
                index = int(torch.randint(self.size, (), generator=self.generator))
                out.append(self.images[index].to(image.device))
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Tensor]:
        stored = torch.stack([image.cpu() for image in self.images]) if self.images else torch.zeros(0)
        return {"images": stored, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Tensor], device: torch.device | str = "cpu") -> None:
        self.images = [image.to(device) for image in state["images"]] if state["images"].numel() else []
        self.generator.set_state(state["generator"])
