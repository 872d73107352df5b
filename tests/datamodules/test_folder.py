"""The folder datamodule: any folder of images through the decoded cache, with optional class subfolders, and exact
resume of its (stateful, in-memory) loader, down to one CLI train + resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from datamodules.folder import FolderDataModule
from gan_lightning.cli import main
from gan_lightning.errors import ConfigError, GanLightningError
from tests.conftest import assert_same_state


def write_images(folder: Path, levels: list[int], size: tuple[int, int] = (20, 12)) -> None:
    """Flat gray images (level = the image's id) of width x height ``size``, a black left column (to see crops)."""
    folder.mkdir(parents=True, exist_ok=True)
    for level in levels:
        pixels = np.full((size[1], size[0]), level, dtype=np.uint8)
        pixels[:, 0] = 0
        Image.fromarray(pixels).convert("RGB").save(folder / f"{level:03d}.png")


def datamodule(root: Path, tmp_path: Path, **overrides) -> FolderDataModule:
    config = OmegaConf.merge(OmegaConf.structured(FolderDataModule.Config), {
        "root": str(root), "image_size": 8, "batch_size": 2, "cache_dir": str(tmp_path / "cache"), **overrides})
    FolderDataModule.check_config(config)
    return FolderDataModule(config, seed=0)


def levels(images: torch.Tensor) -> list[int]:
    return [int(image[0, 4, 4]) for image in images]


def test_a_flat_folder(tmp_path: Path) -> None:
    write_images(tmp_path / "faces", [10, 20, 30])
    write_images(tmp_path / "faces" / "more", [40])
    dm = datamodule(tmp_path / "faces", tmp_path)
    dm.setup()
    assert levels(dm.samples) == [10, 20, 30] and dm.labels is None and dm.num_classes is None
    assert dm.sample_shape == (3, 8, 8) and dm.dataset_id.startswith("folder-faces-")
    recursive = datamodule(tmp_path / "faces", tmp_path, recursive=True, channels=1, crop="center")
    recursive.setup()
    assert levels(recursive.samples) == [10, 20, 30, 40] and recursive.samples.shape == (4, 1, 8, 8)
    # The centre 12 x 12 crop of a 20 x 12 image drops the black left column; the whole image keeps a dark edge.
    assert int(recursive.samples[0, 0, :, 0].min()) == 10 and int(dm.samples[0, 0, :, 0].max()) < 10


def test_class_subfolders_are_labels(tmp_path: Path) -> None:
    write_images(tmp_path / "pets" / "dog", [50, 60])
    write_images(tmp_path / "pets" / "cat", [10, 20, 30])
    dm = datamodule(tmp_path / "pets", tmp_path, labels=True)
    dm.setup()
    assert dm.class_names == ["cat", "dog"] and dm.label_names == ["cat", "dog"] and dm.num_classes == 2
    # interleaved by rank within the class, so a limit keeps both classes
    assert levels(dm.samples) == [10, 50, 20, 60, 30] and dm.labels.tolist() == [0, 1, 0, 1, 0]
    assert not dm.multi_label and dm.labels.dtype == torch.long


@pytest.mark.parametrize("setup, words", [
    (lambda root: write_images(root / "cat", [1]) or write_images(root, [2]),
     r"data.labels: \S+ holds images directly \(002.png ...\); with data.labels=true every image lies in a class"),
    (lambda root: write_images(root, [2]), r"data.labels: \S+ has no class subfolders"),
    (lambda root: None, r"data.root: image folder \S+ does not exist"),
])
def test_labelled_folder_errors_are_one_line(tmp_path: Path, setup, words) -> None:
    root = tmp_path / "pets"
    setup(root)
    with pytest.raises(GanLightningError, match=words) as error:
        datamodule(root, tmp_path, labels=True).setup()
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("key, value", [("crop", "left_half"), ("channels", 2), ("image_size", 4),
                                        ("decode_workers", 0)])
def test_bad_settings_name_the_key(tmp_path: Path, key: str, value) -> None:
    with pytest.raises(ConfigError, match=f"data.{key}: "):
        datamodule(tmp_path, tmp_path, **{key: value})


def _endless(loader):
    while True:
        yield from loader


def test_a_resumed_loader_yields_the_straight_batches(tmp_path: Path) -> None:
    write_images(tmp_path / "pets" / "a", list(range(10, 80, 10)))
    write_images(tmp_path / "pets" / "b", list(range(15, 85, 10)))
    dm = datamodule(tmp_path / "pets", tmp_path, labels=True, batch_size=3)
    dm.setup()
    straight = [b for _, b in zip(range(10), _endless(dm.make_batches(0, 1, True)), strict=False)]
    first = dm.make_batches(0, 1, True)
    head = [b for _, b in zip(range(4), _endless(first), strict=False)]
    resumed = dm.make_batches(0, 1, True)
    resumed.load_state_dict(first.state_dict())
    tail = [b for _, b in zip(range(6), _endless(resumed), strict=False)]
    for got, want in zip(head + tail, straight, strict=True):
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_cli_train_and_resume_equal_a_straight_run(tmp_path: Path) -> None:
    write_images(tmp_path / "faces", list(range(5, 250, 15)), size=(16, 16))
    experiment = tmp_path / "folder_dcgan.yaml"
    experiment.write_text(
        "model: {name: dcgan, latent_dim: 8, width_g: 4, width_d: 4}\n"
        f"data: {{name: folder, root: {tmp_path / 'faces'}, image_size: 16, batch_size: 4, "
        f"cache_dir: {tmp_path / 'cache'}}}\n"
        "trainer: {accelerator: cpu, log_every_n_steps: 1}\n"
        "callbacks: {samples: {every_n_steps: 3, n: 4, nrow: 2}, checkpoint: {every_n_steps: 2}}\n"
        "run: {quiet: true}\n")

    def train(run: str, steps: int, *extra: str) -> None:
        assert main(["train", str(experiment), f"run.dir={tmp_path / run}", f"trainer.max_steps={steps}",
                     *extra]) == 0

    train("straight", 6)  # 6 batches: more than one epoch of 17 images in batches of 4
    train("split", 3)
    train("split", 6, "--resume")
    load = lambda run: torch.load(tmp_path / run / "checkpoints" / "last.ckpt", weights_only=True)  # noqa: E731
    assert_same_state(load("straight"), load("split"))


def test_fingerprints_of_older_checkpoints_still_match(tmp_path: Path) -> None:
    import hashlib

    write_images(tmp_path / "faces", [10, 20, 30])
    dm = datamodule(tmp_path / "faces", tmp_path)
    dm.setup()
    legacy = hashlib.blake2b(digest_size=16)  # before block digests: one hash over shape, dtype and every byte
    legacy.update(str((tuple(dm.samples.shape), dm.samples.dtype)).encode())
    legacy.update(dm.samples.contiguous().numpy().data)
    assert dm.fingerprint.startswith("v2:") and dm.matches_fingerprint(dm.fingerprint)
    assert dm.matches_fingerprint(legacy.hexdigest()) and not dm.matches_fingerprint("0" * 32)


def test_data_and_statistics_caches_share_one_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datamodules.image_folder import default_data_cache
    from gan_lightning.files import CACHE_ENV
    from gan_lightning.metrics.stats import default_cache_dir

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    assert (default_data_cache(), default_cache_dir()) == (tmp_path / "cache" / "data", tmp_path / "cache" / "stats")
    monkeypatch.delenv(CACHE_ENV)
    assert default_data_cache().parent == default_cache_dir().parent == Path.home() / ".cache" / "gan_lightning"
