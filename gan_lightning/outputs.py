"""What a command writes for the user (``sample``'s grid or tensor, ``translate``'s images, ``evaluate``'s report):
checked before anything runs, written whole or not at all.

- No command writes over a file it reads. An output whose path resolves to a file the command reads (its
  checkpoint, its input images) is refused in one line: paths are compared after ``os.path.realpath`` (symlinks,
  ``..``) and, where both exist, by device and inode (hard links). ``translate``'s ``--out`` may not be the
  ``--input`` folder nor lie inside it.
- An output file naming an existing directory is refused in one line.
- Outputs are written through :func:`gan_lightning.files.atomic_write`: a temporary name in the same folder, renamed
  over the target, so an interrupted command leaves the previous file or none, never a 0-byte or partial one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gan_lightning.errors import GanLightningError
from gan_lightning.files import atomic_write
from gan_lightning.rundir import check_writable


class ReadFiles:
    """The files a command reads (path -> what it is, e.g. "the checkpoint"), to look outputs up against: by resolved
    path, and by (device, inode) for those that exist."""

    def __init__(self, reads: Mapping[str | Path, str]):
        self.by_path: dict[str, tuple[str, Path]] = {}
        self.by_inode: dict[tuple[int, int], tuple[str, Path]] = {}
        for path, what in reads.items():
            self.by_path[os.path.realpath(path)] = (what, Path(path))
            try:
                status = os.stat(path)
            except OSError:
                continue
            self.by_inode[(status.st_dev, status.st_ino)] = (what, Path(path))

    def find(self, out: str | Path) -> tuple[str, Path] | None:
        """(what, path) of the read file that ``out`` would overwrite, or None."""
        found = self.by_path.get(os.path.realpath(out))
        if found is None and self.by_inode:
            try:
                status = os.stat(out)
            except OSError:
                return None
            found = self.by_inode.get((status.st_dev, status.st_ino))
        return found


def check_not_read(outputs: Iterable[str | Path], option: str, reads: ReadFiles | Mapping[str | Path, str],
                   advice: str | None = None) -> None:
    """One line if any of ``outputs`` (given through ``option``) is a file the command reads, ending with ``advice``
    (default: choose another ``option``)."""
    reads = reads if isinstance(reads, ReadFiles) else ReadFiles(reads)
    for out in outputs:
        found = reads.find(out)
        if found is not None:
            what, path = found
            raise GanLightningError(f"{option} {out} is {what} {path}, which this command reads: "
                                    f"{advice or f'choose another {option}'}")


def check_output_file(path: str | Path, option: str, reads: Mapping[str | Path, str]) -> None:
    """One line, before any work, if the output file ``path`` is a file the command reads, an existing directory, or
    in a folder that cannot be written."""
    path = Path(path)
    check_not_read([path], option, reads)
    if path.is_dir():
        example = path / f"out{path.suffix or '.png'}"
        raise GanLightningError(f"{option} {path} is a directory; give a file name, e.g. {example}")
    check_writable(path.parent, option)


def check_not_inside(out: str | Path, option: str, folders: Mapping[str | Path, str]) -> None:
    """One line, before any work, if the output folder ``out`` is one of ``folders`` (path -> what it is, e.g. "the
    --input folder") or lies inside one: the outputs would be written among the files the command reads. Paths are
    compared resolved (symlinks, ``..``)."""
    real_out = Path(os.path.realpath(out))
    for folder, what in folders.items():
        real = Path(os.path.realpath(folder))
        if real_out == real or real in real_out.parents:
            where = "is" if real_out == real else "is inside"
            raise GanLightningError(f"{option} {out} {where} {what} {folder}: the outputs would be written among its "
                                    "files; choose a folder outside it")


def check_output_folder(out: str | Path, option: str, input_dir: str | Path, input_option: str,
                        files: Iterable[Path], reads: Mapping[str | Path, str] | None = None) -> None:
    """One line, before any work, if the folder ``out`` (which receives one file per input file, same names) is the
    input folder, lies inside it, or would hold a file the command reads (an input file, or one of ``reads``)."""
    out, input_dir = Path(out), Path(input_dir)
    check_not_inside(out, option, {input_dir: f"the {input_option} folder"})
    files = list(files)
    read = ReadFiles({**{path: "the input image" for path in files}, **(reads or {})})
    check_not_read((out / path.name for path in files), option, read)
    check_writable(out, option)


def image_format(path: str | Path) -> str | None:
    """The PIL format that writes ``path``'s extension (e.g. "PNG"), or None if PIL cannot write it."""
    from PIL import Image

    name = Image.registered_extensions().get(Path(path).suffix.lower())
    return name if name in Image.SAVE else None


def save_image_file(image: Any, path: str | Path) -> None:
    """A C x H x W image in [0, 1] (or a batch, as a grid) to ``path`` through :func:`atomic_write`."""
    from torchvision.utils import save_image

    atomic_write(path, lambda file: save_image(image, file, format=image_format(path)))
