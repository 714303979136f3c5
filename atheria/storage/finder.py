"""Find the newest valid checkpoint across a local dir and its remote mirror, verifying before trusting.

Our own because Lightning's ckpt_path="last" neither sees remote fsspec dirs nor verifies what it loads.
Checkpoints from Drive or a bucket are untrusted data: they are loaded with weights_only=True.
"""
from __future__ import annotations

import contextlib
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from atheria.storage.atomic import get_file_atomic, sha256_file, temp_name
from atheria.storage.manifest import FileEntry, Manifest, file_entry, read_manifest, write_manifest
from atheria.storage.paths import join, url_to_fs

CHECKPOINT_SUFFIX = ".ckpt"
SOURCES = ("local", "remote")


class CorruptCheckpoint(Exception):
    """A checkpoint that cannot be trusted: truncated, damaged, not a checkpoint, or carrying forbidden pickled code."""


@dataclass
class Candidate:
    """A checkpoint that may be resumed from: where it is, its training step, and its manifest entry if listed."""

    url: str
    step: int
    source: str
    entry: FileEntry | None


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint on CPU without executing pickled code; any failure is a CorruptCheckpoint with one line."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises OSError, RuntimeError, UnpicklingError, KeyError... for bad files
        raise CorruptCheckpoint(f"{path}: not a safe, complete checkpoint ({_one_line(exc)})") from exc
    if not isinstance(ckpt, dict):
        raise CorruptCheckpoint(f"{path}: holds a {type(ckpt).__name__}, not a checkpoint dict")
    return ckpt


def checkpoint_step(path: str | Path) -> int:
    """The training step stored in a checkpoint (its 'global_step'), read through the safe loader."""
    ckpt = load_checkpoint(path)
    try:
        return int(ckpt["global_step"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptCheckpoint(f"{path}: has no integer 'global_step'") from exc


def list_candidates(dir_url: str, source: str, say: Callable[[str], None] = print) -> list[Candidate]:
    """The *.ckpt files of a dir, newest step first; steps from its manifest, else (local only) from the file."""
    if source not in SOURCES:
        raise ValueError(f"source {source!r} must be one of {SOURCES}")
    fs, path = url_to_fs(dir_url)
    fs.invalidate_cache(path)  # fsspec caches listings (gcsfs per instance); another process may have written
    try:
        infos = fs.ls(path, detail=True)
    except FileNotFoundError:
        return []
    manifest = read_manifest(dir_url)
    listed = manifest.files if manifest else {}
    found = []
    for info in infos:
        name = posixpath.basename(info["name"].rstrip("/"))
        if info["type"] != "file" or name.startswith(".") or not name.endswith(CHECKPOINT_SUFFIX):
            continue
        url = join(dir_url, name) if source == "remote" else os.path.join(path, name)
        if name in listed:
            found.append(Candidate(url, listed[name].step, source, listed[name]))
        elif source == "local":
            try:
                found.append(Candidate(url, checkpoint_step(url), source, None))
            except CorruptCheckpoint as exc:
                say(f"skipping checkpoint {exc}")
    pointer = manifest.checkpoint if manifest else None
    found.sort(key=lambda c: (-c.step, posixpath.basename(c.url) != pointer, c.url))
    return found


def find_latest(local_dir: str, remote_dir: str | None,
                say: Callable[[str], None] = print) -> tuple[str, Candidate] | None:
    """The newest valid checkpoint by step across local and remote (ties: local), as a local path, or None."""
    local_path = url_to_fs(local_dir)[1]
    candidates = list_candidates(local_path, "local", say)
    if remote_dir:
        try:
            candidates += list_candidates(remote_dir, "remote", say)
        except Exception as exc:  # an unreachable remote must not stop a resume from local checkpoints
            say(f"remote {remote_dir} unreachable ({_one_line(exc)}); looking at local checkpoints only")
    candidates.sort(key=lambda c: (-c.step, c.source != "local"))  # stable: keeps each dir's order on ties
    for cand in candidates:
        try:
            path = _verify(cand.url, cand.entry) if cand.source == "local" else _fetch(cand, local_path)
        except CorruptCheckpoint as exc:
            say(f"skipping checkpoint {exc}; falling back to the next newest")
            continue
        except Exception as exc:  # a download that fails mid-way: the next candidate may still be reachable
            say(f"skipping checkpoint {cand.url}: download failed ({_one_line(exc)}); falling back to the next newest")
            continue
        return path, cand
    return None


def _verify(path: str, entry: FileEntry | None, label: str | None = None) -> str:
    """Check a file against its manifest entry (size, sha256), then load it safely; returns the path.

    A file that differs from its entry but loads and holds a later step is a rewrite whose manifest update was cut
    short (a kill between the save, or the upload of a reused name like last.ckpt, and the manifest): it is
    accepted, not mistaken for damage. Both tiers write a name only whole (atomic save, atomic upload)."""
    label = label or path
    if entry is not None:
        size = os.path.getsize(path)
        if size != entry.size or sha256_file(path) != entry.sha256:
            if _later_step(path, entry):
                return path
            if size != entry.size:
                raise CorruptCheckpoint(f"{label}: {size} bytes, manifest says {entry.size}")
            raise CorruptCheckpoint(f"{label}: sha256 differs from its manifest entry (damaged or rewritten)")
    load_checkpoint(path)
    return path


def _later_step(path: str, entry: FileEntry) -> bool:
    """True when a local file is a complete checkpoint of a later step than its manifest entry says."""
    try:
        return checkpoint_step(path) > entry.step
    except CorruptCheckpoint:
        return False


def _fetch(cand: Candidate, local_dir: str) -> str:
    """Download a remote candidate beside its local name, verify it there, then move it into place."""
    name = posixpath.basename(cand.url)
    os.makedirs(local_dir, exist_ok=True)
    final = os.path.join(local_dir, name)
    tmp = temp_name(final)
    try:
        get_file_atomic(cand.url, tmp)
        _verify(tmp, cand.entry, label=cand.url)
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
    if cand.entry is not None:  # described afresh: a rewrite newer than its remote entry was accepted above
        _record_local(local_dir, name, file_entry(final, checkpoint_step(final)))
    return final


def _record_local(local_dir: str, name: str, entry: FileEntry) -> None:
    """List a downloaded file in the local manifest, so the local pointer stays true to the files beside it."""
    old = read_manifest(local_dir)
    files = {**(old.files if old else {}), name: entry}
    newest = old is None or entry.step >= old.step
    write_manifest(local_dir, Manifest(step=entry.step if newest else old.step,
                                       checkpoint=name if newest else old.checkpoint, files=files))


def _one_line(exc: BaseException) -> str:
    """A short one-line reason for an exception (torch's weights_only refusals span many lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    line = next((x for x in lines if "GLOBAL" in x), lines[0] if lines else "")
    return f"{type(exc).__name__}: {line}"[:200] if line else type(exc).__name__
