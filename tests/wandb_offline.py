"""W&B's offline run files read back: a run-*.wandb file is a leveldb log (32 KiB blocks of records, each a 7-byte
header, then a chunk of a wandb_internal_pb2.Record) after a 7-byte file header. wandb 0.31 ships the protobuf
definitions but no Python reader of its own (wandb-core reads the files)."""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Iterator

BLOCK, HEADER = 32 * 1024, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> Iterator[Any]:
    """The Records of one run-*.wandb file, in the order written."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        if kind == 0:  # zeros to the block's end
            pos += left
            continue
        chunk, pos = data[pos + HEADER:pos + HEADER + length], pos + HEADER + length
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def runs(logs: Path) -> list[Path]:
    """The experiment's offline run files, one per session, oldest first."""
    return sorted((logs / "wandb").glob("offline-run-*/run-*.wandb"), key=lambda p: p.parent.name)


def _items(items: Any) -> dict[str, Any]:
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


def history(run: Path) -> list[dict[str, Any]]:
    """Every wandb.log call's values (a picture's fields as `key/_type`, `key/filenames`, ...)."""
    return [_items(r.history.item) for r in records(run) if r.WhichOneof("record_type") == "history"]


def run_info(run: Path) -> tuple[str, list[str], dict[str, Any]]:
    """The run's id, its tags and its config as W&B keeps them."""
    config: dict[str, Any] = {}
    run_id, tags = "", []
    for record in records(run):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run_id, tags = record.run.run_id, list(record.run.tags)
            config.update(_items(record.run.config.update))
        elif kind == "config":
            config.update(_items(record.config.update))
    return run_id, tags, {k: v.get("value", v) if isinstance(v, dict) else v for k, v in config.items()}


def picture_episodes(rows: list[dict[str, Any]], key: str) -> list[int]:
    """The episodes at which W&B got the picture `key`."""
    return [int(row["episode"]) for row in rows if f"{key}/_type" in row]


def metric_episodes(rows: list[dict[str, Any]], key: str = "train/loss") -> list[int]:
    """The episodes at which W&B got the metric `key`."""
    return [int(row["episode"]) for row in rows if key in row]


def summary(run: Path) -> dict[str, Any]:
    """The run's summary as its last updates left it."""
    values: dict[str, Any] = {}
    for record in records(run):
        if record.WhichOneof("record_type") == "summary":
            values.update(_items(record.summary.update))
            for item in record.summary.remove:
                values.pop(item.key or "/".join(item.nested_key), None)
    return values


def x_axes(run: Path) -> dict[str, str]:
    """Each define_metric's name (or glob) and the metric W&B plots it against."""
    return {(r.metric.name or r.metric.glob_name): r.metric.step_metric for r in records(run)
            if r.WhichOneof("record_type") == "metric" and r.metric.step_metric}


def artifacts(run: Path) -> list[dict[str, Any]]:
    """Each artifact the run logged: name, type, aliases, metadata and the files in it."""
    return [{"name": a.name, "type": a.type, "aliases": sorted(a.aliases), "metadata": json.loads(a.metadata or "{}"),
             "files": [e.path for e in a.manifest.contents]}
            for a in (r.artifact for r in records(run) if r.WhichOneof("record_type") == "artifact")]
