"""The latest pointer of a checkpoint dir: latest.json names the newest checkpoint and each file's size, sha256 and
step."""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeGuard

from atheria.storage.atomic import sha256_file, write_bytes_atomic
from atheria.storage.paths import join, url_to_fs

MANIFEST_NAME = "latest.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=,+-]{0,250}\.ckpt$")  # a plain checkpoint file name, nothing more
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
log = logging.getLogger(__name__)
_warned: set[str] = set()


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
    """The manifest of a local or remote dir; None when it is missing or unparsable (never raises on bad JSON).
    Manifests on Drive or a bucket are untrusted: an entry that is not a plain checkpoint name with a size, sha256
    and step is dropped with one warning; a pointer to no valid entry makes the whole manifest unusable."""
    url = join(dir_url, MANIFEST_NAME)
    fs, path = url_to_fs(url)
    try:
        data = json.loads(fs.cat_file(path))
        step, pointer, entries = data["step"], data["checkpoint"], data["files"]
        if not isinstance(entries, dict) or not _is_count(step):
            raise ValueError("no files or step")
    except (FileNotFoundError, ValueError, KeyError, TypeError, AttributeError):
        return None
    files = {}
    for name, e in entries.items():
        entry = _entry(name, e)
        if entry is None:
            _warn_once(f"ignoring entry {str(name)[:80]!r} of {url}: not a plain checkpoint name with a size, "
                       "sha256 and step (damaged or forged)")
        else:
            files[name] = entry
    if pointer not in files:
        _warn_once(f"ignoring {url}: its checkpoint {str(pointer)[:80]!r} names no valid entry (damaged or forged)")
        return None
    return Manifest(step=step, checkpoint=pointer, files=files, updated=str(data.get("updated", "")))


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _entry(name: object, e: object) -> FileEntry | None:
    """A manifest entry when it is well formed, else None."""
    if not isinstance(name, str) or not _NAME.match(name) or not isinstance(e, dict):
        return None
    size, sha, step = e.get("size"), e.get("sha256"), e.get("step")
    if not (_is_count(size) and _is_count(step) and isinstance(sha, str) and _SHA256.match(sha)):
        return None
    return FileEntry(size=size, sha256=sha, step=step)


def _warn_once(message: str) -> None:
    """Log a warning the first time it is seen in this process (a manifest is read at every mirror job)."""
    if message not in _warned:
        _warned.add(message)
        log.warning(message)


def write_manifest(dir_url: str, manifest: Manifest) -> None:
    """Publish a manifest atomically, so readers see either the old pointer or the new one."""
    text = json.dumps(asdict(manifest), indent=1, sort_keys=True)
    write_bytes_atomic(join(dir_url, MANIFEST_NAME), text.encode())
