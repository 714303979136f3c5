"""Atomic writes to local disk and fsspec remotes: a reader never sees a partial file under its final name.

Local targets: write a hidden temp sibling, fsync, os.replace, fsync the directory (fsspec's local put
neither fsyncs nor renames into place). Remote targets: upload to '.<name>.partial-<uuid>' and fs.mv it
into place, except on object stores (atomic_upload in storage.traits), where an upload only becomes visible once
complete (and where gcsfs's mv is a slow server-side copy, ~35 s per file on the emulator while it retries the
moveTo API).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import posixpath
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO, Callable

import fsspec

from atheria.storage import traits
from atheria.storage.paths import url_to_fs

_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a local file, read in chunks, to verify checkpoints without loading them."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def write_bytes_atomic(url: str, data: bytes) -> None:
    """Write data to a local path or URL so that its final name only ever holds the complete bytes."""
    fs, path = url_to_fs(url)
    if traits.of_fs(fs).local:
        _replace_local(path, lambda f: f.write(data))
    else:
        _replace_remote(fs, path, lambda target: fs.pipe_file(target, data))


def replace_text(path: str, text: str) -> None:
    """Write a small local file so that a kill leaves the old text or the new under its name, never an empty file:
    write_bytes_atomic without its two fsyncs, for a file rewritten every episode (the W&B marker) that guards
    against kills, not power loss. Its sibling has a fixed name, so kills leave at most one behind."""
    head, name = os.path.split(path)
    sibling = os.path.join(head, f".{name}.new")  # hidden: the mirror leaves dot files alone
    with open(sibling, "w") as f:
        f.write(text)
    os.replace(sibling, path)


def torch_bytes(obj: object) -> bytes:
    """obj as torch.save writes it. Serialised in memory, not streamed into the file: there a full disk would surface
    as torch's RuntimeError rather than the OSError that the disk-full stop reads."""
    import torch  # here: commands that do not train import this module and must not pay for torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def save_torch_atomic(obj: object, url: str) -> None:
    """torch.save obj atomically to a local path or URL."""
    write_bytes_atomic(url, torch_bytes(obj))


def put_file_atomic(local_path: str | Path, url: str) -> None:
    """Copy a local file to a local path or URL atomically (the mirror's one way of uploading)."""
    fs, path = url_to_fs(url)
    if traits.of_fs(fs).local:
        with open(local_path, "rb") as src:
            _replace_local(path, lambda f: shutil.copyfileobj(src, f, _CHUNK))
    else:
        _replace_remote(fs, path, lambda target: fs.put_file(str(local_path), target))


def get_file_atomic(url: str, local_path: str | Path) -> None:
    """Download a URL into a temp name beside local_path, fsync, then os.replace it into place."""
    fs, path = url_to_fs(url)
    with fs.open(path, "rb") as src:
        _replace_local(os.path.abspath(local_path), lambda f: shutil.copyfileobj(src, f, _CHUNK))


def link_atomic(src: str, dst: str) -> bool:
    """Make local path dst a hard link to src, atomically (a temp link renamed over dst): the same bytes under a
    second name without writing them again. False, with dst untouched, where the filesystem has no hard links."""
    tmp = temp_name(dst)
    try:
        os.link(src, tmp)
    except OSError:
        return False
    try:
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync_dir(os.path.dirname(dst))
    return True


def temp_name(path: str) -> str:
    """A hidden sibling name for an in-progress write: '.<name>.partial-<uuid>'."""
    head, name = posixpath.split(path)
    return posixpath.join(head, f".{name}.partial-{uuid.uuid4().hex}")


def _replace_local(path: str, fill: Callable[[BinaryIO], object]) -> None:
    """Fill a temp sibling, fsync it, rename it over path and fsync the directory so the rename survives a crash."""
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = temp_name(path)
    try:
        with open(tmp, "wb") as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync_dir(parent)


def _fsync_dir(path: str) -> None:
    """fsync a directory entry; some FUSE mounts (Google Drive) refuse it, which is harmless there."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _replace_remote(fs: fsspec.AbstractFileSystem, path: str, send: Callable[[str], object]) -> None:
    """Send to a temp sibling then mv into place (or straight to path on object stores); drop the temp on failure."""
    if traits.of_fs(fs).atomic_upload:
        send(path)
        return
    tmp = temp_name(path)
    try:
        send(tmp)
        fs.mv(tmp, path)
    except BaseException:
        with contextlib.suppress(Exception):  # best effort: a remote that just failed may refuse this too
            fs.rm_file(tmp)
        raise
