"""The latest pointer of a checkpoint dir: latest.json names the newest checkpoint and each file's size, sha256, step."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from atheria.storage.atomic import sha256_file, write_bytes_atomic
from atheria.storage.paths import join, url_to_fs

MANIFEST_NAME = "latest.json"


def _utc_now() -> str:
    """Current time as an ISO-8601 UTC string."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class FileEntry:
    """What a verified checkpoint file looks like: its size, sha256 and training step."""

    size: int
    sha256: str
    step: int


@dataclass
class Manifest:
    """The latest pointer: 'checkpoint' names the newest file; 'files' lists every checkpoint in the dir."""

    step: int
    checkpoint: str
    files: dict[str, FileEntry]
    updated: str = field(default_factory=_utc_now)


def file_entry(path: str | Path, step: int) -> FileEntry:
    """Describe a local checkpoint file for a manifest (size and sha256 read from disk)."""
    return FileEntry(size=os.path.getsize(path), sha256=sha256_file(path), step=int(step))


def read_manifest(dir_url: str) -> Manifest | None:
    """The manifest of a local or remote dir; None when it is missing or unparsable (never raises on bad JSON)."""
    fs, path = url_to_fs(join(dir_url, MANIFEST_NAME))
    try:
        data = json.loads(fs.cat_file(path))
        files = {str(name): FileEntry(size=int(e["size"]), sha256=str(e["sha256"]), step=int(e["step"]))
                 for name, e in data["files"].items()}
        return Manifest(step=int(data["step"]), checkpoint=str(data["checkpoint"]), files=files,
                        updated=str(data.get("updated", "")))
    except (FileNotFoundError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_manifest(dir_url: str, manifest: Manifest) -> None:
    """Publish a manifest atomically, so readers see either the old pointer or the new one."""
    text = json.dumps(asdict(manifest), indent=1, sort_keys=True)
    write_bytes_atomic(join(dir_url, MANIFEST_NAME), text.encode())
