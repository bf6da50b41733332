"""A reader of W&B's `.wandb` transaction log (a test helper): wandb >= 0.2x dropped its Python
reader (the file is read by wandb-core), so this follows the documented LevelDB log format the
file uses and parses each record with wandb's own protobuf `Record`.

file   := header(7: ident ":W&B", magic uint16, version uint8) block*
block  := 32 KiB of record* (a tail shorter than a record header is zero padding)
record := crc32c uint32, length uint16, type uint8 (1 full, 2 first, 3 middle, 4 last), data
"""

from __future__ import annotations

import json
import struct
from typing import Iterator

BLOCK = 32768
HEADER = 7


def records(path: str) -> Iterator:
    from wandb.proto import wandb_internal_pb2

    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b":W&B", data[:7]
    pos, parts = HEADER, b""
    while pos + HEADER <= len(data):
        room = BLOCK - pos % BLOCK
        if room < HEADER:
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        if kind == 0:  # zero padding to the end of the block
            pos += room
            continue
        parts += data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            parts = b""
            yield record


def history(path: str) -> dict[int, dict]:
    """{step: {key: value}} of the file's history records (wandb's own `_step` etc. left out)."""
    out: dict[int, dict] = {}
    for r in records(path):
        if r.WhichOneof("record_type") == "history":
            items = {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in r.history.item}
            out.setdefault(r.history.step.num, {}).update({k: v for k, v in items.items() if not k.startswith("_")})
    return out


def run_record(path: str):
    """The file's `run` record (id, project, config)."""
    return next(r.run for r in records(path) if r.WhichOneof("record_type") == "run")


def exit_code(path: str) -> int | None:
    for r in records(path):
        if r.WhichOneof("record_type") == "exit":
            return r.exit.exit_code
    return None


def summary(path: str) -> dict:
    """The run summary as its `summary` records left it (the last value of each key)."""
    out: dict = {}
    for r in records(path):
        if r.WhichOneof("record_type") == "summary":
            for u in r.summary.update:
                out[u.key or "/".join(u.nested_key)] = json.loads(u.value_json)
    return out
