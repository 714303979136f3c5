"""Find the newest valid checkpoint across a local dir and its remote mirror, verifying before trusting.

Our own because Lightning's ckpt_path="last" neither sees remote fsspec dirs nor verifies what it loads.
Checkpoints from Drive or a bucket are untrusted data: they are loaded with weights_only=True, and one that no
manifest entry vouches for has its zip CRCs checked first (torch.load reads flipped tensor bytes silently).
"""
from __future__ import annotations

import contextlib
import os
import posixpath
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from atheria.errors import one_line
from atheria.storage.atomic import get_file_atomic, sha256_file, temp_name
from atheria.storage.manifest import FileEntry, Manifest, file_entry, read_manifest, write_manifest
from atheria.storage.paths import join, url_to_fs

CHECKPOINT_SUFFIX = ".ckpt"
SOURCES = ("local", "remote")
_STEP_IN_NAME = re.compile(r"^(?:ep|step)(\d+)\.ckpt$")  # Lightning's cadence names, the RL scheduler's


class CorruptCheckpoint(Exception):
    """A checkpoint that cannot be trusted: truncated, damaged, not a checkpoint, or carrying forbidden pickled code."""


class NoTrustedCheckpoint(Exception):
    """Checkpoint files exist, but not one of them could be verified: resuming is refused rather than starting fresh
    over them. The message is one line naming the files."""


@dataclass
class Candidate:
    """A checkpoint that may be resumed from: where it is, its training step, its manifest entry if listed, and for a
    remote file with no entry, the verified local copy made to learn its step (`fetched`)."""

    url: str
    step: int
    source: str
    entry: FileEntry | None
    fetched: str | None = None


def check_crc(path: str | Path) -> None:
    """Raise CorruptCheckpoint unless every member of the checkpoint's zip matches its stored CRC-32."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise CorruptCheckpoint(f"{path}: not a complete checkpoint archive ({_why(exc)})") from exc
    if bad is not None:
        raise CorruptCheckpoint(f"{path}: CRC mismatch in {bad} (damaged bytes)")


def load_checkpoint(path: str | Path, crc: bool = True) -> dict[str, Any]:
    """Load a checkpoint on CPU without executing pickled code, CRC-checked first unless the caller verified its
    sha256 against a manifest (`crc=False`); any failure is a CorruptCheckpoint with one line."""
    import torch  # here, so the session core and the commands that only list checkpoints load no torch

    if crc:
        check_crc(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises OSError, RuntimeError, UnpicklingError, KeyError... for bad files
        raise CorruptCheckpoint(f"{path}: not a safe, complete checkpoint ({_why(exc)})") from exc
    if not isinstance(ckpt, dict):
        raise CorruptCheckpoint(f"{path}: holds a {type(ckpt).__name__}, not a checkpoint dict")
    return ckpt


def checkpoint_step(path: str | Path, crc: bool = True) -> int:
    """The training step stored in a checkpoint (its 'global_step'), read through the safe loader."""
    ckpt = load_checkpoint(path, crc)
    try:
        return int(ckpt["global_step"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptCheckpoint(f"{path}: has no integer 'global_step'") from exc


def list_candidates(dir_url: str, source: str, say: Callable[[str], None] = print,
                    refused: Optional[list[str]] = None) -> list[Candidate]:
    """The *.ckpt files of a dir, newest step first: steps from its manifest; a local file it does not list is
    loaded for its step; a remote one gets step -1 and `entry` None (find_latest downloads it to learn more).
    Files that fail are said and added to `refused`."""
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
        elif source == "remote":
            found.append(Candidate(url, -1, source, None))
        else:
            try:
                found.append(Candidate(url, checkpoint_step(url), source, None))
            except CorruptCheckpoint as exc:
                _refuse(exc, say, refused)
    pointer = manifest.checkpoint if manifest else None
    found.sort(key=lambda c: (-c.step, posixpath.basename(c.url) != pointer, c.url))
    return found


def find_latest(local_dir: str, remote_dir: str | None,
                say: Callable[[str], None] = print) -> tuple[str, Candidate] | None:
    """The newest valid checkpoint by step across local and remote (ties: local), as a local path; None when there
    is no checkpoint file at all. Remote files no manifest lists are downloaded and verified directly when they may
    be newer than every listed one (their name's step, or no step in the name) or when nothing listed verifies.
    Raises NoTrustedCheckpoint when files exist and none verifies: never a silent fresh start over them."""
    local_path = url_to_fs(local_dir)[1]
    refused: list[str] = []
    candidates = list_candidates(local_path, "local", say, refused)
    if remote_dir:
        try:
            candidates += list_candidates(remote_dir, "remote", say, refused)
        except Exception as exc:  # an unreachable remote must not stop a resume from local checkpoints
            say(f"remote {remote_dir} unreachable ({_why(exc)}); looking at local checkpoints only")
    unlisted = [c for c in candidates if c.source == "remote" and c.entry is None]
    known = [c for c in candidates if c not in unlisted]
    top = max((c.step for c in known), default=-1)
    eager = [c for c in unlisted if (step := name_step(c.url)) is None or step >= top]
    probed: list[Candidate] = []
    try:
        for batch in (eager, [c for c in unlisted if c not in eager]):
            fetched = [p for p in (_probe(c, local_path, say, refused) for c in batch) if p is not None]
            probed += fetched
            found = _first_good(known + fetched, local_path, say, refused)
            if found is not None:
                return found
            known = []
    finally:
        for cand in probed:  # the ones not moved into place
            with contextlib.suppress(FileNotFoundError):
                os.remove(str(cand.fetched))
    if refused:
        shown = "; ".join(refused[:3]) + (f"; and {len(refused) - 3} more" if len(refused) > 3 else "")
        raise NoTrustedCheckpoint(f"checkpoint files exist but none could be verified: {shown}")
    return None


def _first_good(candidates: list[Candidate], local_path: str, say: Callable[[str], None],
                refused: list[str]) -> tuple[str, Candidate] | None:
    """The first candidate, newest step first (ties: local), that verifies, as a local path."""
    candidates = sorted(candidates, key=lambda c: (-c.step, c.source != "local"))  # stable: each dir's order
    for cand in candidates:
        try:
            if cand.source == "local" and cand.entry is None:
                path = cand.url  # loaded (CRC, safe load, step) when listed, under the experiment's lock since
            elif cand.source == "local":
                path = _verify(cand.url, cand.entry)
            elif cand.fetched:
                path = _place(cand, local_path)
            else:
                path = _fetch(cand, local_path)
        except CorruptCheckpoint as exc:
            _refuse(exc, say, refused, "; falling back to the next newest")
            continue
        except Exception as exc:  # a download that fails mid-way: the next candidate may still be reachable
            say(f"skipping checkpoint {cand.url}: download failed ({_why(exc)}); falling back to the next newest")
            refused.append(f"{cand.url} (download failed)")
            continue
        return path, cand
    return None


def _probe(cand: Candidate, local_dir: str, say: Callable[[str], None], refused: list[str]) -> Candidate | None:
    """Download a remote file that no manifest lists to a temp name beside its local name, CRC-check and load it
    safely for its step; the verified candidate, or None (said, refused)."""
    os.makedirs(local_dir, exist_ok=True)
    tmp = temp_name(os.path.join(local_dir, posixpath.basename(cand.url)))
    try:
        get_file_atomic(cand.url, tmp)
        step = checkpoint_step(tmp)
    except CorruptCheckpoint as exc:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        _refuse(CorruptCheckpoint(str(exc).replace(tmp, cand.url)), say, refused)
        return None
    except Exception as exc:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        say(f"skipping checkpoint {cand.url}: download failed ({_why(exc)})")
        refused.append(f"{cand.url} (download failed)")
        return None
    return Candidate(cand.url, step, "remote", None, fetched=tmp)


def _place(cand: Candidate, local_dir: str) -> str:
    """Move a probed remote file into its local name and list it in the local manifest."""
    name = posixpath.basename(cand.url)
    final = os.path.join(local_dir, name)
    os.replace(str(cand.fetched), final)
    _record_local(local_dir, name, file_entry(final, cand.step))
    return final


def name_step(url: str) -> int | None:
    """The step a cadence checkpoint's name or URL carries (ep000123.ckpt -> 123, step00000123.ckpt -> 123), or
    None."""
    found = _STEP_IN_NAME.match(posixpath.basename(url))
    return int(found.group(1)) if found else None


def _refuse(exc: CorruptCheckpoint, say: Callable[[str], None], refused: Optional[list[str]], tail: str = "") -> None:
    """Say why a checkpoint is skipped, and note it for the refusal when none is left."""
    say(f"skipping checkpoint {exc}{tail}")
    if refused is not None:
        refused.append(str(exc)[:200])


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
    load_checkpoint(path, crc=entry is None)
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
    step, checkpoint = (entry.step, name) if old is None or entry.step >= old.step else (old.step, old.checkpoint)
    write_manifest(local_dir, Manifest(step=step, checkpoint=checkpoint, files=files))


def _why(exc: BaseException) -> str:
    """An exception as one line; torch's weights_only refusals span many, and the one naming the GLOBAL says why."""
    return one_line(exc, typed=True, prefer="GLOBAL")
