"""Check ``gan_lightning.metrics.perceptual.lpips_vgg`` against the ``lpips`` package (richzhang/PerceptualSimilarity),
and print the reference values ``tests/metrics/test_lpips.py`` checks against. Usage:

    pip install --no-deps lpips     # not a dependency of the framework: only this script imports it
    python benchmarks/check_lpips.py

Offline: the package's learned weights (``weights/v0.1/vgg.pth``, 7 KB) ship inside its wheel, and its VGG16 is
random (``pnet_rand=True``: torchvision's ImageNet file is a download). Two checks, on the image pairs of
``reference_pairs`` (seeded; 32 x 32 and 64 x 48, RGB and grey, two images per pair), each printing the largest
absolute difference between ours and the package's ``LPIPS(net='vgg')`` and exiting 1 when it exceeds 1e-6:

1. the package's own weights: its random VGG16 saved in torchvision's key layout (``features.<index>.*``, as
   ``vgg16-397923af.pth``), its bundled learned weights saved as they are; our loader reads both files;
2. the seeded weights the test builds without the package (``seeded_vgg16_state``, ``seeded_lpips_state``) loaded
   into the package's model; the package's values for them are printed as the test's ``REFERENCE`` table.
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

import torch

VGG16_TAPS = (3, 8, 15, 22, 29)  # the last index of each of the package's slices 1..5 (relu1_2 ... relu5_3)
TAP_CHANNELS = (64, 128, 256, 512, 512)
TOLERANCE = 1e-6


def seeded_vgg16_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """torchvision's vgg16 ``features.*`` keys and shapes, He-normal weights (fan_out, as torchvision initialises
    them) and small normal biases, drawn from one seeded generator in key order: reproducible without any file."""
    from torchvision.models.vgg import cfgs, make_layers

    generator = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        shapes = {key: value.shape for key, value in make_layers(cfgs["D"]).state_dict().items()}
    state = {}
    for key, shape in shapes.items():
        if key.endswith("weight"):
            fan_out = shape[0] * shape[2] * shape[3]
            state[f"features.{key}"] = torch.randn(shape, generator=generator) * math.sqrt(2.0 / fan_out)
        else:
            state[f"features.{key}"] = torch.randn(shape, generator=generator) * 0.01
    return state


def seeded_lpips_state(seed: int = 1) -> dict[str, torch.Tensor]:
    """LPIPS's lin-layer keys and shapes with uniform [0, 1) weights (non-negative, as the learned ones)."""
    generator = torch.Generator().manual_seed(seed)
    return {f"lin{k}.model.1.weight": torch.rand((1, c, 1, 1), generator=generator)
            for k, c in enumerate(TAP_CHANNELS)}


def reference_pairs() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Named image pairs in [-1, 1] (N = 2 each): x uniform, y = x plus Gaussian noise of a pair-specific strength,
    clamped; grey pairs have one channel (LPIPS repeats it to RGB)."""
    pairs = {}
    for seed, (name, shape, noise) in enumerate((("rgb_32", (2, 3, 32, 32), 0.5), ("rgb_64x48", (2, 3, 64, 48), 0.1),
                                                 ("grey_32", (2, 1, 32, 32), 1.0),
                                                 ("grey_64x48", (2, 1, 64, 48), 0.3))):
        generator = torch.Generator().manual_seed(100 + seed)
        x = torch.rand(shape, generator=generator) * 2 - 1
        y = (x + noise * torch.randn(shape, generator=generator)).clamp(-1, 1)
        pairs[name] = (x, y)
    return pairs


def package_lpips(vgg_state: dict[str, torch.Tensor] | None, lin_state: dict[str, torch.Tensor] | None):
    """The package's ``LPIPS(net='vgg')`` with a random VGG16 and its bundled learned weights, or the given states."""
    import lpips

    model = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False).eval()
    if vgg_state is not None:
        slices = [model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4, model.net.slice5]
        for block in slices:  # the slices hold torchvision's feature layers under their original indices
            block.load_state_dict({key: vgg_state[f"features.{key}"] for key in block.state_dict()})
    if lin_state is not None:
        model.load_state_dict(lin_state, strict=False)
    return model


def package_vgg16_state(model) -> dict[str, torch.Tensor]:
    """The package model's VGG16 in torchvision's key layout (``features.<index>.weight``)."""
    slices = [model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4, model.net.slice5]
    return {f"features.{key}": value.clone() for block in slices for key, value in block.state_dict().items()}


def compare(package_model, vgg_state: dict, lin_state: dict, folder: Path) -> tuple[float, dict[str, list[float]]]:
    """Largest |ours - package| over the reference pairs, and the package's values per pair."""
    from gan_lightning.metrics.perceptual import lpips_vgg

    torch.save(vgg_state, folder / "vgg16.pth")
    torch.save(lin_state, folder / "lpips_vgg.pth")
    ours_model = lpips_vgg(folder / "vgg16.pth", folder / "lpips_vgg.pth")
    worst, values = 0.0, {}
    with torch.no_grad():
        for name, (x, y) in reference_pairs().items():
            ours = ours_model(x, y)
            # the package's input is RGB: grey images repeated to three channels, as ours does inside
            theirs = package_model(x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)).flatten()
            worst = max(worst, float((ours - theirs).abs().max()))
            values[name] = [float(v) for v in theirs]
    return worst, values


def main() -> int:
    try:
        import lpips  # noqa: F401
    except ImportError:
        print("needs the lpips package: pip install --no-deps lpips", file=sys.stderr)
        return 2
    failed = False
    with tempfile.TemporaryDirectory() as folder:
        torch.manual_seed(0)  # the package's random VGG16
        package = package_lpips(None, None)
        lin_state = {key: value for key, value in package.state_dict().items() if key.startswith("lin")}
        worst, values = compare(package, package_vgg16_state(package), lin_state, Path(folder))
        print(f"1. package weights (random VGG16, bundled v0.1 lin): max |ours - lpips| = {worst:.3g}")
        for name, pair in values.items():
            print(f"   {name}: {pair[0]:.6f} {pair[1]:.6f}")
        failed |= worst > TOLERANCE

        vgg_state, lin_state = seeded_vgg16_state(), seeded_lpips_state()
        worst, values = compare(package_lpips(vgg_state, lin_state), vgg_state, lin_state, Path(folder))
        print(f"2. seeded weights of tests/metrics/test_lpips.py: max |ours - lpips| = {worst:.3g}")
        print("REFERENCE = {")
        for name, pair in values.items():
            print(f'    "{name}": ({pair[0]!r}, {pair[1]!r}),')
        print("}")
        failed |= worst > TOLERANCE
    print("FAILED" if failed else f"ok: within {TOLERANCE:g}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
