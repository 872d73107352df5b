"""Images decoded once into a uint8 array cache, memory-mapped by every later run: the loader of every folder dataset.

A list of jpg/png files is decoded (in parallel worker processes, with a progress bar) into one N x C x S x S uint8
``.npy`` file under the cache dir, keyed by the files' paths, sizes and modification times and by the preprocessing
(``Preprocess``: crop, size, channels): a changed file or setting makes a new cache entry, an unchanged folder is
never decoded again. The file is written in order, chunk by chunk, so building the cache of a dataset larger than
memory never holds it whole; it is opened memory-mapped, so batches are sliced from the page cache instead of
from a second copy in RAM. The block digests of its rows (``datamodules.digest``) are computed while it is written
and stored beside it (``<cache>.npy.digest``): the data's fingerprint never reads the cache again. A cache file that
is not what its key promises (truncated, or another dtype or shape) is decoded again, with a one-line warning.

Every Pillow mode becomes 8-bit L or RGB by a fixed rule (then RGB or L as ``channels`` asks: L is repeated, RGB
becomes Pillow's ITU-R 601-2 luma), so no file is silently clipped:

==========================================  =========================================================================
mode                                        becomes
==========================================  =========================================================================
L, RGB                                      itself
1                                           L: 0 and 255
P (no transparency)                         RGB through its palette
I;16, I;16L, I;16B, I;16N                   L: x / 257, rounded (0..65535 onto 0..255)
I (32-bit int; old Pillow: 16-bit PNGs)     L: clipped to 0..65535, then x / 257, rounded
F (float)                                   L: clipped to [0, 1] (NaN as 0), then x * 255, rounded
CMYK                                        RGB: R = (255 - C)(255 - K) / 255 rounded, G and B alike (no ICC profile)
LA, La, PA, RGBA, RGBa; 1, L, P, RGB with   composited over white: c * a / 255 + 255 * (1 - a / 255), rounded (a
a transparency key                          transparent pixel is white whatever colour it stores); a 16-bit or float
                                            image's transparency key is ignored
YCbCr, LAB, HSV, RGBX                       RGB by Pillow's ``convert``
==========================================  =========================================================================

File names are hashed as the bytes the OS stores (``os.fsencode``), so names that are not valid UTF-8 work.

Stopping a cache build: SIGINT or SIGTERM during the decoding ends it with one ``stopped:`` line (exit 130 / 143),
the decode workers terminated and the temporary cache file removed; a worker that dies (the OOM killer) is one
``error:`` line. Workers also die with the process that started them (Linux: ``PR_SET_PDEATHSIG``), so a SIGKILL
leaves no orphan decoding for good; the temporary file such a kill leaves is removed by a later build once no process
holds its lock (``gan_lightning.files.remove_dead_temporaries``). The planned cache is checked against the free space
of ``data.cache_dir`` before any decoding.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from datamodules.digest import BlockHasher, block_digests, read_block_digests, write_block_digests
from gan_lightning.errors import ConfigError, GanLightningError, Stopped
from gan_lightning.files import atomic_write, atomic_write_text, cache_root, not_a_folder, remove_dead_temporaries

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
CROPS = ("none", "center", "left_half", "right_half")
_CHUNK = 256  # images per worker task: large enough to amortise the transfer, small enough for a smooth bar
_IN_PROCESS_BELOW = 512  # fewer images than this decode in this process (starting workers costs more)
# The largest side an image is decoded to: a square of Pillow's decompression-bomb limit (PIL.Image.MAX_IMAGE_PIXELS,
# 89,478,485 pixels). Checked with the config, so a mistyped size fails before any image is decoded.
MAX_IMAGE_SIDE = math.isqrt(89_478_485)


def image_side_check(key: str, value: int, least: int = 8) -> tuple[str, bool, str]:
    """The ``check_values`` row for a decoded image side ``key``: an int in [least, MAX_IMAGE_SIDE]."""
    return key, least <= value <= MAX_IMAGE_SIDE, f"an int in [{least}, {MAX_IMAGE_SIDE}] (pixels a side)"


def default_data_cache() -> Path:
    return cache_root() / "data"


def data_cache(setting: str | None) -> Path:
    """The cache folder a ``data.cache_dir`` setting names (null: the default one)."""
    return Path(setting).expanduser() if setting else default_data_cache()


def image_files(folder: Path, recursive: bool = False) -> list[Path]:
    """The images of ``folder`` (and, ``recursive``, of its subfolders) in path order; one line if it is missing or
    holds none."""
    problem = not_a_folder(folder)
    if problem:
        raise GanLightningError(f"image folder {folder} {problem}")
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    files = sorted(p for p in candidates if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise GanLightningError(f"image folder {folder} holds no {'/'.join(IMAGE_SUFFIXES)} images")
    return files


@dataclass(frozen=True)
class Preprocess:
    """How a file becomes a C x size x size uint8 array: an optional crop, then a bicubic resize of the result.

    crop: ``none`` (the whole image), ``center`` (a centred square of side ``crop_size``, or of the shorter side when
    ``crop_size`` is null: CelebA's 178 x 178 face crop), ``left_half`` / ``right_half`` (one half of a side-by-side
    pix2pix pair, A | B)."""

    size: int
    channels: int = 3
    crop: str = "none"
    crop_size: int | None = None

    def __post_init__(self) -> None:
        if self.crop not in CROPS:
            raise ConfigError(f"crop {self.crop!r}; accepted: {', '.join(CROPS)}")
        if self.channels not in (1, 3):
            raise ConfigError(f"data.channels: {self.channels}; accepted: 1, 3")

    @property
    def key(self) -> str:
        return f"size={self.size} channels={self.channels} crop={self.crop}:{self.crop_size} resize=bicubic"

    def box(self, width: int, height: int) -> tuple[int, int, int, int] | None:
        if self.crop == "left_half":
            return (0, 0, width // 2, height)
        if self.crop == "right_half":
            return (width // 2, 0, width // 2 * 2, height)
        if self.crop == "center":
            side = min(self.crop_size or min(width, height), width, height)
            left, top = (width - side) // 2, (height - side) // 2
            return (left, top, left + side, top + side)
        return None


# Modes by the rule that makes them 8-bit (the module docstring's table); the rest go through Pillow's convert.
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_ALPHA = ("LA", "La", "PA", "RGBA", "RGBa")
_KEYED = ("1", "L", "P", "RGB")  # modes whose transparency key (``info["transparency"]``) becomes an alpha channel
_GRAY = ("1", "L", "LA", "La")


def to_8bit(image):
    """``image`` (a Pillow image of any mode) as mode L or RGB, by the module docstring's table."""
    from PIL import Image

    mode = image.mode
    if mode in _SIXTEEN_BIT:
        values = np.clip(np.asarray(image).astype(np.int64), 0, 65535)  # big-endian or int32 alike, exactly
        return Image.fromarray(((values + 128) // 257).astype(np.uint8))
    if mode == "F":
        values = np.clip(np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0), 0.0, 1.0)
        return Image.fromarray(np.floor(values * 255 + 0.5).astype(np.uint8))
    if mode == "CMYK":  # Pillow's own rule has changed between versions: this one is fixed here
        cmyk = np.asarray(image).astype(np.int64)
        return Image.fromarray((((255 - cmyk[..., :3]) * (255 - cmyk[..., 3:]) + 127) // 255).astype(np.uint8))
    if mode in _ALPHA or (mode in _KEYED and "transparency" in image.info):
        # Pillow's RGB drops alpha and keeps whatever colour a transparent pixel stores: composite instead.
        pixels = np.asarray(image.convert("LA" if mode in _GRAY else "RGBA")).astype(np.int64)
        colour, alpha = pixels[..., :-1], pixels[..., -1:]
        composited = ((colour * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
        return Image.fromarray(composited[..., 0] if mode in _GRAY else composited)
    if mode in ("L", "RGB"):
        return image
    return image.convert("L" if mode == "1" else "RGB")


def read_image(path: Path):
    """The Pillow image in ``path``, decoded whole (a damaged file fails here, not at its first use); one line naming
    the file if it cannot be read."""
    from gan_lightning.images import IMAGE_ERRORS, image_error_reason, open_image

    try:
        with open_image(path) as image:
            image.load()
            return image
    except IMAGE_ERRORS as error:
        raise GanLightningError(f"cannot read image {path} ({image_error_reason(error)})") from None


def decode_image(path: Path, preprocess: Preprocess) -> np.ndarray:
    """One image file as C x size x size uint8; one line naming the file if it cannot be read."""
    from PIL import Image

    image = read_image(path)
    try:
        box = preprocess.box(*image.size)
        image = to_8bit(image.crop(box) if box else image)
        image = image.convert("RGB" if preprocess.channels == 3 else "L")
        array = np.asarray(image.resize((preprocess.size, preprocess.size), Image.BICUBIC), dtype=np.uint8)
    except (OSError, ValueError) as error:
        raise GanLightningError(f"cannot read image {path} ({type(error).__name__})") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def decode_whole(path: Path, channels: int) -> np.ndarray:
    """One image file at its own size as C x H x W uint8 (no crop, no resize: super-resolution ground truth); one line
    naming the file if it cannot be read."""
    image = read_image(path)
    try:
        array = np.asarray(to_8bit(image).convert("RGB" if channels == 3 else "L"), dtype=np.uint8)
    except (OSError, ValueError) as error:
        raise GanLightningError(f"cannot read image {path} ({type(error).__name__})") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def image_sizes(files: Sequence[Path]) -> list[tuple[int, int]]:
    """(height, width) of each file, from its header alone; one line naming a file that cannot be read (a
    decompression bomb included: refused, never decoded)."""
    from gan_lightning.images import IMAGE_ERRORS, image_error_reason, open_image

    sizes = []
    for path in files:
        try:
            with open_image(path) as image:
                width, height = image.size
        except IMAGE_ERRORS as error:
            raise GanLightningError(f"cannot read image {path} ({image_error_reason(error)})") from None
        sizes.append((height, width))
    return sizes


def _decode_chunk(files: Sequence[Path], preprocess: Preprocess) -> np.ndarray:
    return np.stack([decode_image(path, preprocess) for path in files])


def _decode_flat_chunk(files: Sequence[Path], channels: int) -> np.ndarray:
    """The images of ``files`` at their own sizes, flattened and concatenated (the ragged cache's layout)."""
    return np.concatenate([decode_whole(path, channels).reshape(-1) for path in files])


def _cache_key(files: Sequence[Path], preprocess: Preprocess | str) -> str:
    """The key of ``files`` decoded by ``preprocess`` (or by the setting a string names: the ragged cache)."""
    setting = preprocess if isinstance(preprocess, str) else preprocess.key
    digest = hashlib.blake2b(digest_size=12)
    digest.update(f"v3 {setting}".encode())  # v3: 16-bit, float, CMYK and alpha images decode by the table
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            raise GanLightningError(f"cannot read image {path} (missing)") from None
        # The name's bytes as stored: a name that is not valid UTF-8 has no str encoding.
        digest.update(os.fsencode(path.resolve()) + f"\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def default_workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _start_worker() -> None:
    """In each decode worker: die with the parent (a SIGKILL'd build must not leave workers blocked on its queue for
    good, holding their memory), and leave SIGINT to the parent (a terminal's Ctrl-C reaches the whole process
    group: the parent stops the build, the workers need not print tracebacks)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's "raise Stopped" handler is not for workers
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop a pool at once: pending chunks cancelled, running workers killed (``shutdown`` alone would wait for
    every chunk already queued). Python < 3.14 has no public call for the workers, hence ``_processes``."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=5)


def _decoded_chunks(files: Sequence[Path], preprocess: Preprocess, workers: int,
                    decode_chunk: Callable[[Sequence[Path], Any], np.ndarray] = _decode_chunk,
                    chunk_size: int = _CHUNK) -> Iterator[np.ndarray]:
    """The decoded images in file order, a chunk at a time (from ``workers`` processes when it pays).
    ``decode_chunk(files, preprocess)``: how a chunk is decoded (a module-level function: workers pickle it)."""
    chunks = [files[start : start + chunk_size] for start in range(0, len(files), chunk_size)]
    if workers <= 1 or len(files) < _IN_PROCESS_BELOW:
        for chunk in chunks:
            yield decode_chunk(chunk, preprocess)
        return
    # fork: workers need only PIL and numpy, and start at once (spawn would import torch in each)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method), initializer=_start_worker)
    try:
        yield from pool.map(decode_chunk, chunks, [preprocess] * len(chunks))
    except BrokenProcessPool:
        raise GanLightningError(
            f"a process decoding the images of {files[0].parent} died (killed, often by the out-of-memory killer); "
            f"lower data.decode_workers (now {workers}) or free memory, then run again") from None
    except BaseException:
        _terminate(pool)
        raise
    pool.shutdown(wait=True)


@contextlib.contextmanager
def _stopped_by_signals(what: str) -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Stopped` in the main thread while the block runs, so the ``finally`` and
    ``except`` clauses of a cache build run (workers terminated, temporary file removed); the previous handlers
    come back after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        for other in previous:  # a second signal must not interrupt the clean-up this one starts
            signal.signal(other, signal.SIG_IGN)
        raise Stopped(f"{signal.Signals(signum).name} while {what}: nothing was saved; the next run decodes the "
                      "images again", signum)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def check_free_space(folder: Path, needed: int, what: str, key: str) -> None:
    """One line if the file system of ``folder`` (or of its nearest existing ancestor) has fewer than ``needed``
    bytes free for ``what``."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        free = shutil.disk_usage(existing).free
    except OSError:
        return  # not a folder (check_writable says so) or no statistics: the write itself will tell
    if needed > free:
        raise GanLightningError(f"{key}: {what} needs {needed / 2**30:,.2f} GiB and {folder} has "
                                f"{free / 2**30:,.2f} GiB free; free space or point {key} elsewhere")


def cache_file(files: Sequence[Path], preprocess: Preprocess | str, cache_dir: Path | None = None,
               name: str = "images") -> Path:
    """Where ``load_image_cache`` keeps ``files`` decoded: when it exists, nothing will be decoded (checks that only a
    first decoding needs can be skipped)."""
    return (cache_dir or default_data_cache()) / f"{name}-{_cache_key(files, preprocess)}.npy"


def _cache_damage(path: Path, shape: tuple[int, ...]) -> str | None:
    """Why the cache file ``path`` cannot hold ``shape`` uint8 images (its header, dtype, shape and size are read,
    never its data), or None when it can."""
    try:
        with path.open("rb") as file:
            version = np.lib.format.read_magic(file)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            stored, fortran_order, dtype = header(file)
            data_start = file.tell()
    except (OSError, ValueError) as error:
        return f"is not a readable .npy file ({' '.join(str(error).split())[:80]})"
    if dtype != np.uint8 or fortran_order or tuple(stored) != shape:
        return f"holds {dtype} {tuple(stored)}{' (Fortran order)' if fortran_order else ''}, not uint8 {shape}"
    size, expected = path.stat().st_size, data_start + math.prod(shape)
    if size != expected:
        return f"is {size} bytes, not {expected} (truncated or padded)"
    return None


@dataclass
class ImageCache:
    """A decoded image cache: the uint8 images (memory-mapped) and the block digests of their rows
    (``datamodules.digest``), stored beside the cache file so the data's fingerprint never re-reads it."""

    images: Tensor
    block_digests: list[str]


def _cache_to_write(path: Path, shape: tuple[int, ...]) -> bool:
    """Whether the cache file ``path`` of uint8 ``shape`` must be (re)written: missing, or damaged (with a warning)."""
    damage = _cache_damage(path, shape) if path.is_file() else None
    if damage:  # trusted, it would fail at the first batch that reaches the damage (or serve garbage)
        print(f"warning: image cache {path} {damage}; decoding the images again", file=sys.stderr)
    return bool(damage) or not path.is_file()


def _write_cache(path: Path, shape: tuple[int, ...], chunks: Iterator[np.ndarray], images: int, name: str,
                 seen: Callable[[np.ndarray], int]) -> None:
    """Write the uint8 array ``shape`` from ``chunks`` (in order) as the .npy file ``path``, atomically, with a progress
    bar over ``images`` images; ``seen(chunk)`` digests each chunk as it passes and returns how many images it held."""
    from tqdm import tqdm

    def write(file) -> None:
        np.lib.format.write_array_header_1_0(file, {"descr": "|u1", "fortran_order": False, "shape": shape})
        with tqdm(total=images, desc=f"decoding {name}", unit="img", file=sys.stderr,
                  disable=None) as bar:  # no bar when stderr is not a terminal
            for chunk in chunks:
                file.write(np.ascontiguousarray(chunk).data)
                bar.update(seen(chunk))  # the digest costs no second read of the file

    remove_dead_temporaries(path.parent)  # left by a build killed with SIGKILL (or a power cut)
    layout = f"at {' x '.join(map(str, shape[1:]))}" if len(shape) == 4 else f"of {math.prod(shape):,} pixels"
    check_free_space(path.parent, math.prod(shape) + 128, f"the image cache of {images:,} images {layout}",
                     "data.cache_dir")
    try:
        with _stopped_by_signals(f"decoding {images:,} images into {path}"):
            atomic_write(path, write)
    except OSError as error:
        raise GanLightningError(f"data.cache_dir: cannot write the image cache to {path.parent} "
                                f"({error.strerror or type(error).__name__})") from None


def load_image_cache(files: Sequence[Path], preprocess: Preprocess, cache_dir: Path | None = None,
                     name: str = "images", workers: int | None = None) -> ImageCache:
    """``files`` as a uint8 N x C x size x size tensor over a memory-mapped cache file, decoding them on first use."""
    cache_dir = cache_dir or default_data_cache()
    path = cache_file(files, preprocess, cache_dir, name)
    shape = (len(files), preprocess.channels, preprocess.size, preprocess.size)
    blocks = None
    if _cache_to_write(path, shape):
        workers = default_workers() if workers is None else workers
        hasher = BlockHasher()

        def seen(chunk: np.ndarray) -> int:
            hasher.update(chunk)
            return len(chunk)

        _write_cache(path, shape, _decoded_chunks(files, preprocess, workers), len(files), name, seen)
        blocks = hasher.finish()
        try:
            write_block_digests(path, blocks)
        except OSError as error:
            raise GanLightningError(f"data.cache_dir: cannot write the image cache to {cache_dir} "
                                    f"({error.strerror or type(error).__name__})") from None
    # Copy-on-write memory map: pages come from the file on first touch and nothing is ever written back.
    images = torch.from_numpy(np.load(path, mmap_mode="c"))
    if blocks is None:
        blocks = read_block_digests(path, len(images))
    if blocks is None:  # a cache written before digests were stored (or its digest lost): hash it once, keep it
        blocks = block_digests(images.numpy())
        try:
            write_block_digests(path, blocks)
        except OSError:
            pass  # a read-only cache still works; the digest is recomputed next time
    return ImageCache(images, blocks)


# --- images of different sizes (super-resolution ground truth) --------------------------------------------------
IMAGE_DIGESTS = "image-digests-v1"
_RAGGED_CHUNK = 8  # photographs are large: a few per worker task keeps its result small


def image_digest(image: np.ndarray | Tensor) -> str:
    """The digest of one uint8 image: its shape and bytes."""
    array = image.numpy() if isinstance(image, Tensor) else image
    digest = hashlib.blake2b(f"{tuple(array.shape)}\n".encode(), digest_size=16)
    digest.update(np.ascontiguousarray(array).data.cast("B"))
    return digest.hexdigest()


class RaggedImages:
    """uint8 images of different sizes, stored one after another in one flat buffer (a memory map, or memory);
    ``images[i]`` is image i as a C x H x W view. ``digests``: one ``image_digest`` per image (the data fingerprint)."""

    def __init__(self, pixels: Tensor, shapes: Sequence[tuple[int, int, int]], digests: Sequence[str]):
        self.pixels, self.shapes, self.digests = pixels, [tuple(s) for s in shapes], list(digests)
        self.offsets = [0]
        for shape in self.shapes:
            self.offsets.append(self.offsets[-1] + math.prod(shape))
        if self.offsets[-1] != pixels.numel() or len(self.digests) != len(self.shapes):
            raise ValueError(f"{pixels.numel()} pixels and {len(self.digests)} digests for {len(self.shapes)} images "
                             f"of {self.offsets[-1]} pixels")

    @classmethod
    def from_images(cls, images: Sequence[Tensor]) -> RaggedImages:
        """Images already in memory (uint8 C x H x W tensors of any sizes)."""
        flat = torch.cat([image.reshape(-1) for image in images]) if images else torch.zeros(0, dtype=torch.uint8)
        return cls(flat, [tuple(image.shape) for image in images], [image_digest(image) for image in images])

    def __len__(self) -> int:
        return len(self.shapes)

    def __getitem__(self, index: int) -> Tensor:
        return self.pixels[self.offsets[index] : self.offsets[index + 1]].view(self.shapes[index])

    def head(self, n: int) -> RaggedImages:
        """The first ``n`` images (``data.limit``)."""
        n = min(n, len(self))
        return RaggedImages(self.pixels[: self.offsets[n]], self.shapes[:n], self.digests[:n])


def _digests_path(cache: Path) -> Path:
    return cache.with_name(cache.name + ".images.json")


def _read_image_digests(cache: Path, count: int) -> list[str] | None:
    try:
        stored = json.loads(_digests_path(cache).read_text())
    except (OSError, ValueError):
        return None
    digests = stored.get("digests") if isinstance(stored, dict) and stored.get("format") == IMAGE_DIGESTS else None
    ok = isinstance(digests, list) and len(digests) == count and all(isinstance(d, str) for d in digests)
    return digests if ok else None


def _write_image_digests(cache: Path, digests: list[str]) -> None:
    atomic_write_text(_digests_path(cache), json.dumps({"format": IMAGE_DIGESTS, "digests": digests}))


def load_ragged_cache(files: Sequence[Path], channels: int, cache_dir: Path | None = None, name: str = "images",
                      workers: int | None = None) -> RaggedImages:
    """``files`` decoded at their own sizes (C x H x W each, no crop or resize) into one flat memory-mapped uint8 cache
    file, on first use: the same cache rules as ``load_image_cache`` (key, damage check, atomic write), with one
    digest per image stored beside it (``<cache>.npy.images.json``)."""
    if channels not in (1, 3):
        raise ConfigError(f"data.channels: {channels}; accepted: 1, 3")
    cache_dir = cache_dir or default_data_cache()
    shapes = [(channels, height, width) for height, width in image_sizes(files)]
    path = cache_file(files, f"whole channels={channels}", cache_dir, name)
    shape = (sum(math.prod(s) for s in shapes),)
    digests = None
    if _cache_to_write(path, shape):
        workers = default_workers() if workers is None else workers
        written: list[str] = []

        def seen(chunk: np.ndarray) -> int:  # the images of the chunk, split by their header sizes
            first = len(written)
            indices = range(first, min(first + _RAGGED_CHUNK, len(files)))
            sizes = [math.prod(shapes[i]) for i in indices]
            if sum(sizes) != len(chunk):
                raise GanLightningError(f"the images from {files[first]} on decode to other sizes than their headers "
                                        "say")
            for i, piece in zip(indices, np.split(chunk, np.cumsum(sizes)[:-1]), strict=True):
                written.append(image_digest(piece.reshape(shapes[i])))
            return len(indices)

        chunks = _decoded_chunks(files, channels, workers, _decode_flat_chunk, _RAGGED_CHUNK)
        _write_cache(path, shape, chunks, len(files), name, seen)
        digests = written
        try:
            _write_image_digests(path, digests)
        except OSError as error:
            raise GanLightningError(f"data.cache_dir: cannot write the image cache to {cache_dir} "
                                    f"({error.strerror or type(error).__name__})") from None
    pixels = torch.from_numpy(np.load(path, mmap_mode="c"))  # copy-on-write memory map, as load_image_cache
    if digests is None:
        digests = _read_image_digests(path, len(shapes))
    if digests is None:  # lost or damaged: hash once, keep it
        images = RaggedImages(pixels, shapes, [""] * len(shapes))
        digests = [image_digest(images[i]) for i in range(len(images))]
        try:
            _write_image_digests(path, digests)
        except OSError:
            pass  # a read-only cache still works; the digests are recomputed next time
    return RaggedImages(pixels, shapes, digests)
