"""Bad input to the image datasets: file names that are not UTF-8, every Pillow mode decoded to the stated uint8
values (no silent clipping), and a damaged decoded-image cache rebuilt with one warning line instead of trusted."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from datamodules import image_folder
from datamodules.digest import digest_path, read_block_digests
from datamodules.image_folder import Preprocess, cache_file, load_image_cache, to_8bit
from gan_lightning.errors import GanLightningError
from tests.datamodules.test_folder import datamodule, levels, write_images

REPO = Path(__file__).resolve().parents[1]


# --- file names that are not UTF-8 ------------------------------------------------------------------------------------


def write_raw(folder: Path, name: bytes, level: int) -> None:
    """A flat grey 16 x 16 PNG under the file name ``name`` (bytes, as the OS stores them)."""
    with open(os.path.join(os.fsencode(folder), name), "wb") as handle:
        Image.fromarray(np.full((16, 16), level, dtype=np.uint8)).save(handle, "PNG")


def train(tmp_path: Path, model: str, data: str, *extra: str) -> subprocess.CompletedProcess:
    """``gan-lightning train`` of a tiny ``model`` on a folder dataset (``data``: more keys of its data section)."""
    experiment = tmp_path / "folder.yaml"
    experiment.write_text(
        f"model: {{name: {model}, latent_dim: 8, width_g: 4, width_d: 4}}\n"
        f"data: {{name: folder, image_size: 16, batch_size: 4, cache_dir: {tmp_path / 'cache'}, {data}}}\n"
        "trainer: {accelerator: cpu, max_steps: 2}\n"
        "callbacks: {samples: {every_n_steps: 2, n: 4, nrow: 2}, checkpoint: {every_n_steps: 2}}\n"
        f"run: {{quiet: true, dir: {tmp_path / 'run'}}}\n")
    return subprocess.run([sys.executable, "-m", "gan_lightning", "train", str(experiment), *extra],
                          capture_output=True, text=True, errors="backslashreplace", cwd=REPO)


def test_file_names_that_are_not_utf8_are_cached_and_found_again(tmp_path: Path, monkeypatch) -> None:
    write_images(tmp_path / "faces", [10, 20])
    write_raw(tmp_path / "faces", b"\xff\xfe.png", 30)
    write_raw(tmp_path / "faces", b"caf\xe9.png", 40)  # Latin-1, not UTF-8
    dm = datamodule(tmp_path / "faces", tmp_path)
    dm.setup()
    assert levels(dm.samples) == [10, 20, 40, 30]  # path order: "caf\udce9" < "\udcff\udcfe"
    monkeypatch.setattr(image_folder, "decode_image", lambda *args: pytest.fail("decoded again"))
    again = datamodule(tmp_path / "faces", tmp_path)
    again.setup()
    assert levels(again.samples) == [10, 20, 40, 30]


def test_class_folders_that_are_not_utf8_train_and_keep_readable_names(tmp_path: Path) -> None:
    root = tmp_path / "pets"
    for folder, level in ((b"c\xffat", 10), (b"dog", 20)):
        os.makedirs(os.path.join(os.fsencode(root), folder))
        for index in range(4):
            write_raw(Path(os.fsdecode(os.path.join(os.fsencode(root), folder))), b"x%d\xfe.png" % index, level)
    dm = datamodule(root, tmp_path, labels=True)
    dm.setup()
    assert dm.label_names == ["c\\xffat", "dog"] and levels(dm.samples) == [10, 20] * 4
    result = train(tmp_path, "cgan", f"root: {root}, labels: true")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "label_names:\n- c\\xffat\n- dog\n" in (tmp_path / "run" / "hparams.yaml").read_text()


def test_an_unreadable_file_with_a_non_utf8_name_is_one_line(tmp_path: Path) -> None:
    write_images(tmp_path / "faces", [10])
    with open(os.path.join(os.fsencode(tmp_path / "faces"), b"\xff.png"), "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n not really")
    result = train(tmp_path, "dcgan", f"root: {tmp_path / 'faces'}", "--dry-run")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"error: cannot read image {tmp_path / 'faces'}/\\udcff.png (UnidentifiedImageError)\n"
    assert not (tmp_path / "run").exists()


# --- every Pillow mode --------------------------------------------------------------------------------------------

PALETTE = [10, 20, 30, 40, 50, 60, 200, 100, 0, 255, 255, 255]


def image(mode: str, row: list, palette: list[int] | None = None) -> Image.Image:
    """A len(row) x len(row) image of ``mode`` whose every row is ``row``."""
    picture = Image.new(mode, (len(row), len(row)))
    if palette:
        picture.putpalette(palette)
    for x, value in enumerate(row):
        for y in range(len(row)):
            picture.putpixel((x, y), value)
    return picture


def cached(tmp_path: Path, path: Path, channels: int, size: int) -> np.ndarray:
    return load_image_cache([path], Preprocess(size, channels), tmp_path / "cache").images[0].numpy()


def expected(row: list, channels: int) -> np.ndarray:
    """The C x S x S uint8 array whose every row is ``row`` (ints for one channel, tuples for three)."""
    pixels = np.array(row, dtype=np.uint8).reshape(len(row), channels).T  # C x S
    return np.repeat(pixels[:, None, :], len(row), axis=1)


WHITE = (255, 255, 255)
MODES = [
    # (id, mode, file format, row of the written image, save options, channels, row of the cached image)
    ("1", "1", "PNG", [0, 255, 0, 255], {}, 1, [0, 255, 0, 255]),
    ("L", "L", "PNG", [0, 7, 128, 255], {}, 1, [0, 7, 128, 255]),
    ("L as RGB", "L", "PNG", [0, 7, 128, 255], {}, 3, [(0, 0, 0), (7, 7, 7), (128, 128, 128), WHITE]),
    ("RGB as L (luma)", "RGB", "PNG", [(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 20, 30)], {}, 1, [76, 150, 29, 18]),
    ("P", "P", "PNG", [0, 1, 2, 3], {}, 3, [(10, 20, 30), (40, 50, 60), (200, 100, 0), WHITE]),
    ("P transparency key", "P", "PNG", [0, 1, 2, 3], {"transparency": 1}, 3,
     [(10, 20, 30), WHITE, (200, 100, 0), WHITE]),
    ("P alpha per entry", "P", "PNG", [0, 1, 2, 3], {"transparency": bytes([255, 0, 128, 51])}, 3,
     [(10, 20, 30), WHITE, (227, 177, 127), WHITE]),
    ("L transparency key", "L", "PNG", [0, 7, 128, 255], {"transparency": 7}, 1, [0, 255, 128, 255]),
    ("1 transparency key", "1", "PNG", [0, 255, 0, 255], {"transparency": 0}, 1, [255, 255, 255, 255]),
    ("RGB transparency key", "RGB", "PNG", [(1, 2, 3), (4, 5, 6), (1, 2, 4), (0, 0, 0)], {"transparency": (1, 2, 3)},
     3, [WHITE, (4, 5, 6), (1, 2, 4), (0, 0, 0)]),
    ("LA", "LA", "PNG", [(0, 255), (100, 0), (200, 128), (50, 51)], {}, 1, [0, 255, 227, 214]),
    ("RGBA", "RGBA", "PNG", [(10, 20, 30, 255), (40, 50, 60, 0), (200, 100, 0, 128), (0, 0, 0, 51)], {}, 3,
     [(10, 20, 30), WHITE, (227, 177, 127), (204, 204, 204)]),
    ("PA", "PA", "TIFF", [(0, 255), (1, 0), (2, 128), (3, 51)], {}, 3, [(10, 20, 30), WHITE, (227, 177, 127), WHITE]),
    ("I;16 (50% grey is 128)", "I;16", "PNG", [0, 129, 32768, 65535], {}, 1, [0, 1, 128, 255]),
    ("I;16 as RGB", "I;16", "PNG", [0, 129, 32768, 65535], {}, 3, [(0, 0, 0), (1, 1, 1), (128, 128, 128), WHITE]),
    ("I;16B", "I;16B", "TIFF", [0, 129, 32768, 65535], {}, 1, [0, 1, 128, 255]),
    ("I (clipped to 16 bits)", "I", "TIFF", [-5, 129, 32768, 70000], {}, 1, [0, 1, 128, 255]),
    ("F (clipped to [0, 1])", "F", "TIFF", [-1.0, 0.2, 0.5, 2.0, math.nan], {}, 1, [0, 51, 128, 255, 0]),
    ("CMYK", "CMYK", "TIFF", [(10, 20, 30, 40), (0, 0, 0, 0), (255, 0, 0, 0), (0, 0, 0, 255)], {}, 3,
     [(207, 198, 190), WHITE, (0, 255, 255), (0, 0, 0)]),
    ("YCbCr (Pillow's)", "YCbCr", "TIFF", [(10, 120, 130), (200, 90, 160), (0, 128, 128), (255, 128, 128)], {}, 3,
     [(12, 11, 0), (244, 190, 132), (0, 0, 0), WHITE]),
]


@pytest.mark.parametrize("mode, fmt, row, options, channels, want", [case[1:] for case in MODES],
                         ids=[case[0] for case in MODES])
def test_every_mode_is_cached_as_the_stated_uint8(tmp_path: Path, mode, fmt, row, options, channels, want) -> None:
    path = tmp_path / f"image.{fmt.lower()}"
    image(mode, row, PALETTE if mode in ("P", "PA") else None).save(path, fmt, **options)
    with Image.open(path) as written:
        assert written.mode == mode  # the file really holds the mode under test
    assert np.array_equal(cached(tmp_path, path, channels, len(row)), expected(want, channels))


@pytest.mark.parametrize("mode, row, want", [
    ("La", [(100, 255), (100, 0), (50, 128)], [100, 255, 152]),
    ("RGBa", [(10, 20, 30, 255), (0, 0, 0, 0), (100, 50, 0, 128)], [(10, 20, 30), WHITE, (177, 152, 127)]),
])
def test_premultiplied_alpha_is_composited_like_straight_alpha(mode: str, row: list, want: list) -> None:
    """No file format Pillow writes keeps La or RGBa, so these are converted in memory (Pillow premultiplies the
    colour, 100 at alpha 128 is stored as 50: it comes back as the straight 100 before compositing)."""
    straight = image("LA" if mode == "La" else "RGBA", row)
    premultiplied = straight.convert(mode)
    assert premultiplied.mode == mode
    assert np.array_equal(np.asarray(to_8bit(premultiplied)), np.asarray(to_8bit(straight)))
    assert np.asarray(to_8bit(straight))[0].tolist() == [list(p) if isinstance(p, tuple) else p for p in want]


# --- a damaged cache is rebuilt, not trusted ----------------------------------------------------------------------


def _damage_truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _damage_padded(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\0" * 8)


def _damage_other_shape(path: Path) -> None:
    with path.open("wb") as handle:
        np.save(handle, np.zeros((2, 3, 8, 8), dtype=np.uint8))


def _damage_other_dtype(path: Path) -> None:
    with path.open("wb") as handle:
        np.save(handle, np.zeros((3, 3, 8, 8), dtype=np.float32))


def _damage_not_npy(path: Path) -> None:
    path.write_bytes(b"")


DAMAGE = [
    (_damage_truncated, r"is 604 bytes, not 704 \(truncated or padded\)"),
    (_damage_padded, r"is 712 bytes, not 704 \(truncated or padded\)"),
    (_damage_other_shape, r"holds uint8 \(2, 3, 8, 8\), not uint8 \(3, 3, 8, 8\)"),
    (_damage_other_dtype, r"holds float32 \(3, 3, 8, 8\), not uint8 \(3, 3, 8, 8\)"),
    (_damage_not_npy, r"is not a readable \.npy file \(EOF: reading magic string, expected 8 bytes got 0\)"),
]


@pytest.mark.parametrize("damage, words", DAMAGE, ids=[d.__name__[8:] for d, _ in DAMAGE])
def test_a_damaged_cache_is_rebuilt_with_one_warning(tmp_path: Path, capsys, damage, words: str) -> None:
    import re

    write_images(tmp_path / "faces", [10, 20, 30])
    dm = datamodule(tmp_path / "faces", tmp_path)
    dm.setup()
    good, fingerprint = dm.samples.clone(), dm.fingerprint  # before the damage: dm's memory map is of that file
    path = cache_file(sorted((tmp_path / "faces").glob("*.png")), dm.preprocess, tmp_path / "cache", "faces")
    size = path.stat().st_size
    capsys.readouterr()
    damage(path)
    again = datamodule(tmp_path / "faces", tmp_path)
    again.setup()
    err = capsys.readouterr().err
    assert re.fullmatch(f"warning: image cache {re.escape(str(path))} {words}; decoding the images again\n", err), err
    assert np.array_equal(again.samples.numpy(), good.numpy()) and path.stat().st_size == size
    assert again.fingerprint == fingerprint
    third = datamodule(tmp_path / "faces", tmp_path)
    third.setup()
    assert capsys.readouterr().err == ""  # the rebuilt cache is trusted again


@pytest.mark.parametrize("stored", ['{"format": "blocks-v1", "block_rows": 256, "blocks": []}',
                                    '{"format": "blocks-v1", "block_rows": 256, "blocks": ["x", "y"]}', "{trunc"])
def test_stale_or_damaged_block_digests_are_recomputed(tmp_path: Path, stored: str) -> None:
    write_images(tmp_path / "faces", [10, 20, 30])
    dm = datamodule(tmp_path / "faces", tmp_path)
    dm.setup()
    path = cache_file(sorted((tmp_path / "faces").glob("*.png")), dm.preprocess, tmp_path / "cache", "faces")
    digests = digest_path(path).read_text()
    digest_path(path).write_text(stored)
    assert read_block_digests(path, 3) is None
    again = datamodule(tmp_path / "faces", tmp_path)
    again.setup()
    assert again.fingerprint == dm.fingerprint and digest_path(path).read_text() == digests


# --- the decode worker pool: a dead worker, a stopped build, a dead writer's temporary ----------------------------


def _leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.is_dir() else []


def test_a_killed_decode_worker_is_one_line_and_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    """A worker killed mid-chunk (as by the OOM killer: SIGKILL) breaks the pool: one line, no temporary, no cache."""
    write_images(tmp_path / "faces", [10, 20, 30, 40, 50, 60])
    monkeypatch.setattr(image_folder, "_IN_PROCESS_BELOW", 2)
    monkeypatch.setattr(image_folder, "_CHUNK", 2)
    real = image_folder.decode_image

    def killed_on_040(path: Path, preprocess: Preprocess) -> np.ndarray:
        if path.name == "040.png":
            os.kill(os.getpid(), signal.SIGKILL)
        return real(path, preprocess)

    monkeypatch.setattr(image_folder, "decode_image", killed_on_040)  # forked workers inherit it
    with pytest.raises(GanLightningError) as error:
        datamodule(tmp_path / "faces", tmp_path, decode_workers=2).setup()
    assert str(error.value) == (
        f"a process decoding the images of {tmp_path / 'faces'} died (killed, often by the out-of-memory killer); "
        "lower data.decode_workers (now 2) or free memory, then run again")
    assert _leftovers(tmp_path / "cache") == []


STOPPED_BUILD = """
import os, sys, time
from datamodules import image_folder
real, pids = image_folder.decode_image, sys.argv[1]

def slow(path, preprocess):  # the workers' pids, and a decoding slow enough to be caught mid-build
    open(os.path.join(pids, str(os.getpid())), "w").close()
    time.sleep(0.02)
    return real(path, preprocess)

image_folder.decode_image = slow
from gan_lightning.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_during_a_cache_build_stops_workers_and_removes_the_temporary(tmp_path: Path) -> None:
    """`train` SIGTERM'd while its workers decode 520 images (>= 512: the pool): one line, exit 143, every worker
    gone, no temporary file and no cache (the next run decodes again)."""
    folder, pids, cache = tmp_path / "faces", tmp_path / "pids", tmp_path / "cache"
    folder.mkdir()
    for index in range(520):
        Image.new("L", (8, 8), index % 256).save(folder / f"{index:04d}.png")
    pids.mkdir()
    experiment = tmp_path / "folder.yaml"
    experiment.write_text(
        "model: {name: dcgan, latent_dim: 8, width_g: 4, width_d: 4}\n"
        f"data: {{name: folder, root: {folder}, image_size: 16, batch_size: 4, cache_dir: {cache}, "
        "decode_workers: 2}\n"
        f"trainer: {{accelerator: cpu, max_steps: 2}}\nrun: {{quiet: true, dir: {tmp_path / 'run'}}}\n")
    process = subprocess.Popen([sys.executable, "-c", STOPPED_BUILD, str(pids), "train", str(experiment)], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(list(pids.iterdir())) < 2 or not list(cache.glob(".tmp-*")):  # both workers decoding, file open
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 143 and out == ""
    assert err.startswith("stopped: SIGTERM while decoding 520 images into ") and err.count("\n") == 1, err
    assert err.endswith(": nothing was saved; the next run decodes the images again\n")
    workers = [int(p.name) for p in pids.iterdir()]
    deadline = time.monotonic() + 10
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_alive, workers))
    assert _leftovers(cache) == []


def test_a_later_build_removes_only_the_temporaries_of_dead_writers(tmp_path: Path) -> None:
    """A dead writer's temporary (unlocked, older than the grace period) is removed; a live writer's (locked) and a
    just-created one (its writer may not have locked it yet) are kept."""
    import fcntl

    from gan_lightning.files import TEMP_GRACE_SECONDS

    write_images(tmp_path / "faces", [10, 20])
    cache = tmp_path / "cache"
    cache.mkdir()
    dead, live, fresh = (cache / f".tmp-faces-x.npy.{name}" for name in ("dead", "live", "fresh"))
    for path in (dead, live, fresh):
        path.write_bytes(b"\0" * 64)
    old = time.time() - TEMP_GRACE_SECONDS - 5
    for path in (dead, live):
        os.utime(path, (old, old))
    with open(live, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another open file description: to the cleaner, a live writer
        datamodule(tmp_path / "faces", tmp_path).setup()
        assert not dead.exists() and live.exists() and fresh.exists()


# --- sizes checked against the model before any decoding ---------------------------------------------------------


@pytest.mark.parametrize("size, line", [
    (1000, "model.name: dcgan cannot model samples of shape (3, 1000, 1000)"),
    (60000, "data.image_size: 60000; accepted: an int in [8, 9459] (pixels a side)"),
])
@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real"])
def test_an_image_size_the_model_cannot_make_decodes_nothing(tmp_path: Path, monkeypatch, capsys, size: int,
                                                              line: str, dry_run: bool) -> None:
    from gan_lightning.cli import main

    write_images(tmp_path / "faces", [10, 20, 30, 40])
    monkeypatch.setattr(image_folder, "decode_image", lambda *args: pytest.fail("decoded an image"))
    experiment = tmp_path / "folder.yaml"
    experiment.write_text(
        "model: {name: dcgan, latent_dim: 8, width_g: 4, width_d: 4}\n"
        f"data: {{name: folder, root: {tmp_path / 'faces'}, image_size: {size}, batch_size: 2, "
        f"cache_dir: {tmp_path / 'cache'}}}\n"
        f"trainer: {{accelerator: cpu, max_steps: 2}}\nrun: {{quiet: true, dir: {tmp_path / 'run'}}}\n")
    assert main(["train", str(experiment), *(["--dry-run"] if dry_run else [])]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {line}") and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces", "folder.yaml"]  # no cache folder, no run folder


def test_a_cache_larger_than_the_free_space_is_refused_before_decoding(tmp_path: Path, monkeypatch) -> None:
    import shutil
    from collections import namedtuple

    write_images(tmp_path / "faces", [10, 20])
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 100, 100))
    monkeypatch.setattr(image_folder, "decode_image", lambda *args: pytest.fail("decoded an image"))
    with pytest.raises(GanLightningError, match=r"^data.cache_dir: the image cache of 2 images at 3 x 8 x 8 needs "
                       r"0.00 GiB and .*cache has 0.00 GiB free; free space or point data.cache_dir elsewhere$"):
        datamodule(tmp_path / "faces", tmp_path).setup()


# --- decompression bombs: one line wherever an image is opened, no Pillow warning first ---------------------------


@pytest.mark.parametrize("pixels", [1.5, 3.0], ids=["over the warning limit", "over the error limit"])
def test_a_decompression_bomb_in_a_side_by_side_pair_is_one_line(tmp_path: Path, monkeypatch, recwarn,
                                                                pixels: float) -> None:
    """Pillow warns between once and twice MAX_IMAGE_PIXELS and raises beyond: both are the same one line, from the
    pair check (headers only) and from the decoder, and nothing is printed before it."""
    from datamodules.paired import check_side_by_side

    pair = tmp_path / "train" / "0000.png"
    pair.parent.mkdir()
    Image.new("L", (32, 16)).save(pair)
    limit = int(32 * 16 / pixels)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    line = (f"cannot read image {pair} (DecompressionBombError: image size (512 pixels) exceeds limit of "
            f"{limit if pixels < 2 else 2 * limit} pixels)")  # Pillow's warning limit, then its error limit
    for read in (lambda: check_side_by_side([pair]), lambda: image_folder.read_image(pair)):
        with pytest.raises(GanLightningError) as error:
            read()
        assert str(error.value) == line
    assert [str(w.message) for w in recwarn] == []


# --- a root that is a file; a failed download leaves no folder ---------------------------------------------------


def test_an_image_root_that_is_a_file_says_so(tmp_path: Path) -> None:
    root = tmp_path / "faces.png"
    root.write_bytes(b"not a folder")
    with pytest.raises(GanLightningError, match=f"^image folder {root} is a file, expected a folder$"):
        datamodule(root, tmp_path).setup()
    with pytest.raises(GanLightningError, match=f"^data.root: image folder {root} is a file, expected a folder$"):
        datamodule(root, tmp_path, labels=True).setup()


@pytest.mark.parametrize("existing", [False, True], ids=["new root", "existing empty root"])
def test_a_failed_celeba_download_leaves_no_folder_it_made(tmp_path: Path, monkeypatch, existing: bool) -> None:
    import torchvision.datasets

    from datamodules.celeba import CelebADataModule

    root = tmp_path / "faces"
    if existing:
        root.mkdir()

    def refused(root_dir: str, **kwargs) -> None:  # torchvision makes its folder and a partial file, then fails
        (Path(root_dir) / "celeba").mkdir(parents=True, exist_ok=True)
        (Path(root_dir) / "celeba" / "img_align_celeba.zip.part").write_bytes(b"partial")
        raise RuntimeError("Too many users have viewed or downloaded this file recently")

    monkeypatch.setattr(torchvision.datasets, "CelebA", refused)
    config = OmegaConf.merge(OmegaConf.structured(CelebADataModule.Config),
                             {"root": str(root), "download": True, "cache_dir": str(tmp_path / "cache")})
    with pytest.raises(GanLightningError, match="^CelebA download into .* failed \\(RuntimeError: Too many users"):
        CelebADataModule(config).prepare_data()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["faces"] if existing else [])
    assert not existing or list(root.iterdir()) == []  # the user's folder stays, without the partial download
