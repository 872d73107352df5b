"""glibc's heap thresholds: freed blocks stay in the process, both thresholds are set, `train` sets them by default."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gan_lightning import allocator
from gan_lightning import train as train_module
from gan_lightning.cli import main
from tests.conftest import tiny_overrides

glibc_only = pytest.mark.skipif(allocator._glibc() is None, reason="mallopt thresholds are glibc's")

# A fresh process each time: the thresholds are process-wide and cannot be unset. glibc's mallinfo2 says where a
# 16 MiB tensor came from (its own mmap, or the heap) and how much freed memory the heap still holds.
_WHERE_A_BLOCK_LIVES = """
import ctypes, json, sys, torch
from gan_lightning.allocator import keep_freed_memory
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "on":
    assert keep_freed_memory()
before = libc.mallinfo2()
block = torch.ones(4 * 2**20)
live = libc.mallinfo2()
del block
freed = libc.mallinfo2()
print(json.dumps({"mmapped": (live.hblkhd - before.hblkhd) / 2**20, "kept_free": freed.fordblks / 2**20}))
"""


def where_a_block_lives(mode: str) -> dict[str, float]:
    result = subprocess.run([sys.executable, "-c", _WHERE_A_BLOCK_LIVES, mode], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@glibc_only
def test_a_freed_block_stays_in_the_process() -> None:
    # By default a 16 MiB block is glibc's own mmap, unmapped when freed: its pages are faulted in anew next time.
    default = where_a_block_lives("off")
    assert default["mmapped"] == pytest.approx(16, abs=0.1) and default["kept_free"] < 16
    # With the thresholds set it comes from the heap, and the heap keeps it once freed.
    kept = where_a_block_lives("on")
    assert kept["mmapped"] == 0 and kept["kept_free"] >= 16


def test_keep_freed_memory_is_a_no_op_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator._glibc() is None and allocator.keep_freed_memory() is False


def test_both_thresholds_are_set_in_that_order(monkeypatch: pytest.MonkeyPatch) -> None:
    # The trim threshold alone would end glibc's dynamic mmap threshold and mmap every block over 128 KB.
    calls = []

    class FakeLibc:
        def mallopt(self, parameter: int, value: int) -> int:
            calls.append((parameter, value))
            return 1

    monkeypatch.setattr(allocator, "_glibc", FakeLibc)
    assert allocator.keep_freed_memory()
    assert calls == [(-3, 32 * 2**20), (-1, 256 * 2**20)]  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD (malloc.h)


@pytest.mark.parametrize("setting, expected_calls", [([], 1), (["run.keep_freed_memory=false"], 0)])
def test_train_keeps_freed_memory_unless_told_not_to(fake_mnist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     setting: list[str], expected_calls: int) -> None:
    calls = []
    monkeypatch.setattr(train_module, "keep_freed_memory", lambda: calls.append(True))
    assert main(["train", "dcgan_mnist", *tiny_overrides(fake_mnist, tmp_path / "run", 1), *setting]) == 0
    assert len(calls) == expected_calls
