"""Check the FID Inception port against pytorch-fid with the real weights file (cannot run offline: the file is a
download). Usage:

    pip install pytorch-fid
    python benchmarks/check_inception_fid.py pt_inception-2015-12-05-6726825d.pth REAL_DIR FAKE_DIR [--n 2000]

REAL_DIR and FAKE_DIR hold images (png/jpg) of one size each. Printed, and checked (exit 1 when a check fails):
  1. the network: pool3 features of our FIDInceptionV3 and of pytorch-fid's InceptionV3 on the same 299 x 299 input,
     largest absolute difference (must be < 1e-3: same weights, same graph);
  2. FID with pytorch-fid's own pipeline (its resize and 2x - 1 scaling, its scipy sqrtm) against our network and
     Frechet distance on pytorch-fid's preprocessing (must agree to 1e-3 relative);
  3. for information, our FID with each resize protocol (antialias, tf, clean) and our exact TF input scaling
     ((u - 128) / 128, not pytorch-fid's u / 127.5 - 1): they differ from pytorch-fid by design.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gan_lightning.metrics import InceptionFID, feature_statistics, frechet_distance
from gan_lightning.metrics.extractors import RESIZE_PROTOCOLS
from gan_lightning.metrics.inception import load_fid_inception

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


def read_folder(folder: Path, n: int) -> torch.Tensor:
    """The first ``n`` images (sorted by name) as uint8 (N, 3, H, W), as pytorch-fid reads them (PIL, RGB)."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:n]
    if not files:
        sys.exit(f"error: no images in {folder}")
    return torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert("RGB"))).permute(2, 0, 1) for p in files])


def pytorch_fid_net(weights: Path, device: str):
    from pytorch_fid import inception

    # pytorch-fid downloads the same file; hand it the local copy instead.
    inception.load_state_dict_from_url = lambda *args, **kwargs: torch.load(weights, map_location="cpu",
                                                                            weights_only=True)
    return inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(device).eval()


@torch.no_grad()
def features(net, images: torch.Tensor, device: str, batch: int = 50) -> torch.Tensor:
    return torch.cat([net(images[i:i + batch].to(device)) for i in range(0, len(images), batch)]).cpu()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", type=Path)
    parser.add_argument("real", type=Path)
    parser.add_argument("fake", type=Path)
    parser.add_argument("--n", type=int, default=2000, help="images per folder (>= 2048 for a full-rank covariance)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    from pytorch_fid.fid_score import calculate_frechet_distance

    theirs = pytorch_fid_net(args.weights, args.device)
    ours = load_fid_inception(args.weights).to(args.device)
    real, fake = read_folder(args.real, args.n), read_folder(args.fake, args.n)

    # 1. The network on one identical input: pytorch-fid's preprocessing of the first real images.
    probe = (2 * F.interpolate(real[:16].float() / 255, size=(299, 299), mode="bilinear", align_corners=False) - 1)
    gap = (features(lambda x: ours(x)[0], probe, args.device)
           - features(lambda x: theirs(x)[0].flatten(1), probe, args.device)).abs().max().item()
    print(f"1. pool3 features, ours vs pytorch-fid, same input: max |difference| = {gap:.2e}")

    # 2. FID: pytorch-fid's pipeline (its resize, scaling and sqrtm) vs our network and Frechet distance on it.
    def their_input(x: torch.Tensor) -> torch.Tensor:
        return x.float() / 255  # InceptionV3 resizes and scales itself

    def our_input_like_theirs(x: torch.Tensor) -> torch.Tensor:
        return 2 * F.interpolate(x.float() / 255, size=(299, 299), mode="bilinear", align_corners=False) - 1

    stats = {}
    for name, images in (("real", real), ("fake", fake)):
        act = features(lambda x: theirs(their_input(x))[0].flatten(1), images, args.device).double().numpy()
        stats[name] = (act.mean(axis=0), np.cov(act, rowvar=False))
    reference = calculate_frechet_distance(*stats["real"], *stats["fake"])
    mine = frechet_distance(*feature_statistics(features(lambda x: ours(our_input_like_theirs(x))[0], real,
                                                         args.device)),
                            *feature_statistics(features(lambda x: ours(our_input_like_theirs(x))[0], fake,
                                                         args.device)))
    print(f"2. FID on pytorch-fid's preprocessing: pytorch-fid {reference:.4f}, ours {mine:.4f}")

    # 3. Our protocols (information only).
    for protocol in RESIZE_PROTOCOLS:
        extractor = InceptionFID(args.weights).use_protocol(protocol).to(args.device)
        data = [features(lambda x, e=extractor: e(x.float() / 127.5 - 1).features, images, args.device)
                for images in (real, fake)]
        fid = frechet_distance(*feature_statistics(data[0]), *feature_statistics(data[1]))
        print(f"3. ours, protocol {protocol}: FID {fid:.4f}")

    ok = gap < 1e-3 and abs(mine - reference) <= 1e-3 * max(abs(reference), 1.0)
    print("checks 1 and 2:", "passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
