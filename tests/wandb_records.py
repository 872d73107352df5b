"""Read a W&B offline run file (``run-<id>.wandb``) back into W&B's own protobuf records.

The file is W&B's transaction log: a 7-byte header (``:W&B``, a magic and a version byte), then 32 KiB blocks of
LevelDB-log records (4-byte checksum, 2-byte length, 1-byte type: full, or first / middle / last pieces of a
record that spans blocks), each record a serialized ``wandb.proto.wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def raw_records(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    position, pending = 7, b""
    while position + HEADER <= len(data):
        left = BLOCK - position % BLOCK
        if left < HEADER:  # a block's tail too short for a header is padding
            position += left
            continue
        _checksum, length, kind = struct.unpack("<IHB", data[position:position + HEADER])
        if kind == 0:  # zero padding up to the block's end
            position += left
            continue
        chunk = data[position + HEADER:position + HEADER + length]
        position += HEADER + length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pending + chunk


def parsed_records(path: Path, wait: float = 60.0) -> list[Any]:
    """The file's records, once it holds the run's exit record: W&B's service writes the file on its own, and
    under load it may still be writing when ``wandb.finish()`` has returned."""
    from wandb.proto import wandb_internal_pb2

    deadline = time.monotonic() + wait
    while True:
        records = []
        for raw in raw_records(path) if path.is_file() else []:
            record = wandb_internal_pb2.Record()
            record.ParseFromString(raw)
            records.append(record)
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.5)


def read_run(path: Path) -> dict[str, Any]:
    """{"run": the run record, "config": {key: value}, "history": [row dicts], "summary": {key: value},
    "metrics": [metric records]} from one offline run file."""
    out: dict[str, Any] = {"run": None, "config": {}, "history": [], "summary": {}, "metrics": [], "kinds": []}

    def key_of(item: Any) -> str:
        return "/".join(item.nested_key) if item.nested_key else item.key

    for record in parsed_records(path):
        kind = record.WhichOneof("record_type")
        out["kinds"].append(kind)
        if kind == "run":
            out["run"] = record.run
            out["config"].update({item.key: json.loads(item.value_json) for item in record.run.config.update})
        elif kind == "config":
            out["config"].update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "history":
            out["history"].append({key_of(item): json.loads(item.value_json) for item in record.history.item})
        elif kind == "summary":
            out["summary"].update({key_of(item): json.loads(item.value_json) for item in record.summary.update})
        elif kind == "metric":
            out["metrics"].append(record.metric)
    return out
