"""Mirror local checkpoints to durable storage in a background thread, so training never waits on slow storage.

Our own because Lightning writes checkpoints synchronously to one dirpath; a remote dirpath would stall
every save on the network and lose the run's latest pointer when the remote fails mid-write.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import posixpath
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence, TypeVar

import fsspec

from atheria.storage.atomic import put_file_atomic
from atheria.storage.manifest import MANIFEST_NAME, Manifest, read_manifest, write_manifest
from atheria.storage.paths import is_remote, join, url_to_fs

log = logging.getLogger(__name__)  # for the routine skips of a lagging mirror, kept off the console

T = TypeVar("T")


@dataclass
class _Job:
    """What to mirror: files to upload, manifests to publish (per dir) once they are up, files to delete after."""

    files: list[str]
    manifests: dict[str, Manifest]
    delete: list[str]

    def merged(self, newer: _Job) -> _Job:
        """This job with a newer one folded in: newest manifest per dir wins, files and deletes are unions."""
        files = [f for f in self.files if f not in newer.files and f not in newer.delete] + newer.files
        delete = [d for d in self.delete if d not in newer.delete and d not in newer.files] + newer.delete
        return _Job(files, {**self.manifests, **newer.manifests}, delete)


class _Outage(Exception):
    """The remote kept failing after every retry."""


@dataclass
class _State:
    """What the worker thread shares with callers, guarded by `cond`."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    pending: _Job | None = None
    busy: bool = False
    parked: bool = False  # the pending job failed after all retries; it waits for the next submit/wait/close
    kicks: int = 0
    closing: bool = False


class Mirror:
    """Copies local files to a durable root in a background thread so training never waits on slow storage.

    Each file is first copied beside itself as '.<name>.mirror-snapshot' (hashed in the same pass) and the
    snapshot is uploaded, so training may rewrite the file during a slow upload without corrupting the remote.
    Counters: `uploads` and `bytes_uploaded` count files actually sent (unchanged files are skipped),
    `failures` counts failed attempts (each retry included), `last_job_seconds` times the last completed job.
    """

    def __init__(self, local_root: str, remote_root: str, *, retries: int = 4, backoff: float = 1.0,
                 say: Callable[[str], None] = print) -> None:
        if is_remote(local_root):
            raise ValueError(f"local_root {local_root!r} must be a local directory")
        url_to_fs(remote_root)  # an unknown protocol or a missing fsspec backend fails here, not in the thread
        self.local_root = url_to_fs(local_root)[1]
        self.remote_root = remote_root
        self.retries, self.backoff, self.say = retries, backoff, say
        self.last_job_seconds: float | None = None
        self.failures = self.uploads = self.bytes_uploaded = 0
        self._sent: dict[str, tuple[int, str]] = {}  # rel path -> (size, sha256) this Mirror last sent there
        self._down = False
        self._stop = threading.Event()
        self._state = _State()
        self._thread = threading.Thread(target=self._work, name="atheria-mirror", daemon=True)
        self._thread.start()

    def submit(self, files: Sequence[str], *, manifest: Manifest | None = None, manifest_dir: str | None = None,
               delete: Sequence[str] = ()) -> None:
        """Queue files (paths relative to the roots) for upload; returns at once and merges with a queued job."""
        if (manifest is None) != (manifest_dir is None):
            raise ValueError("manifest and manifest_dir go together")
        for rel in [*files, *delete, *([manifest_dir] if manifest_dir else [])]:
            join(self.remote_root, rel)  # refuse '..', absolute parts and protocols before queueing
        manifests = {manifest_dir: manifest} if manifest_dir and manifest else {}
        job = _Job(list(dict.fromkeys(files)), manifests, list(dict.fromkeys(delete)))
        s = self._state
        with s.cond:
            if s.closing:
                raise RuntimeError("Mirror is closed")
            s.pending = job if s.pending is None else s.pending.merged(job)
            s.parked = False
            s.kicks += 1
            s.cond.notify_all()

    def wait(self, timeout: float | None) -> bool:
        """Block until nothing is queued or in flight; False on timeout or when the remote is still failing."""
        deadline = None if timeout is None else time.monotonic() + timeout
        s = self._state
        with s.cond:
            if s.parked:
                s.parked = False
                s.kicks += 1
                s.cond.notify_all()
            while s.busy or (s.pending is not None and not s.parked):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                s.cond.wait(left)
            return s.pending is None

    def close(self, timeout: float | None) -> bool:
        """Flush within timeout, then stop the thread; True when everything reached the remote."""
        start = time.monotonic()
        drained = self.wait(timeout)
        with self._state.cond:
            self._state.closing = True
            self._state.cond.notify_all()
        self._stop.set()
        self._thread.join(None if timeout is None else max(0.0, timeout - (time.monotonic() - start)))
        return drained

    def _work(self) -> None:
        """Worker loop: take the pending job, run it, park it again when the remote stays down."""
        s = self._state
        while True:
            with s.cond:
                while not s.closing and (s.pending is None or s.parked):
                    s.cond.wait()
                if s.closing:
                    return
                job, s.pending, s.busy, kicks = s.pending, None, True, s.kicks
            done = self._run(job)
            with s.cond:
                if not done:
                    s.pending = job if s.pending is None else job.merged(s.pending)
                    s.parked = s.kicks == kicks
                s.busy = False
                s.cond.notify_all()

    def _run(self, job: _Job) -> bool:
        """Upload files, then publish verified manifests, then delete; False when the remote failed throughout."""
        start = time.monotonic()
        try:
            for rel in job.files:
                self._upload(rel)
            for manifest_dir, manifest in job.manifests.items():
                self._publish(manifest_dir, manifest)
            self._delete(job.delete)
        except _Outage as exc:
            if not self._down and not self._stop.is_set():
                self.say(f"remote {self.remote_root} unreachable ({exc}); training goes on, will retry")
            self._down = True
            return False
        except Exception as exc:  # e.g. local disk full while snapshotting: the worker must outlive it
            self.say(f"mirror job failed ({_reason(exc)}); training goes on, will retry")
            self._down = True
            return False
        if self._down:
            self.say(f"remote {self.remote_root} reachable again; pending uploads are done")
        self._down = False
        self.last_job_seconds = time.monotonic() - start
        return True

    def _upload(self, rel: str) -> None:
        """Send a snapshot of one file atomically, unless this Mirror already sent these exact bytes there."""
        local = join(self.local_root, rel)
        head, name = os.path.split(local)
        snapshot = os.path.join(head, f".{name}.mirror-snapshot")
        try:
            signature = _snapshot(local, snapshot)
            if self._sent.get(rel) != signature:
                self._attempt(lambda: put_file_atomic(snapshot, join(self.remote_root, rel)))
                self._sent[rel] = signature
                self.uploads += 1
                self.bytes_uploaded += signature[0]
        except FileNotFoundError:
            log.debug("mirror: %s no longer exists locally; not uploading it", local)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(snapshot)

    def _publish(self, manifest_dir: str, manifest: Manifest) -> None:
        """Write the manifest only when every file it names is on the remote with the listed size and sha256."""
        remote_dir = join(self.remote_root, manifest_dir)
        fs, dir_path = url_to_fs(remote_dir)
        fs.invalidate_cache(dir_path)  # fsspec caches listings; the sizes checked below must be current
        published = self._attempt(lambda: read_manifest(remote_dir))
        for name, entry in manifest.files.items():
            rel = posixpath.join(manifest_dir, name)
            expected = (entry.size, entry.sha256)
            if rel in self._sent:
                known: tuple[int, str] | None = self._sent[rel]
            else:  # sent by an earlier session: trust the published manifest that verified it then
                old = published.files.get(name) if published else None
                known = (old.size, old.sha256) if old else None
            remote_size = self._attempt(lambda: _size_or_none(fs, url_to_fs(join(remote_dir, name))[1]))
            if known != expected or remote_size != entry.size:
                log.debug("mirror: not publishing %s (step %d): %s on the remote is not the file it lists; a newer "
                          "submit will carry it", join(remote_dir, MANIFEST_NAME), manifest.step, name)
                return
        self._attempt(lambda: write_manifest(remote_dir, manifest))

    def _delete(self, paths: Sequence[str]) -> None:
        """Remove remote files, never one that the remote's published manifest still names."""
        protected: dict[str, set[str]] = {}
        for rel in paths:
            head, name = posixpath.split(rel)
            if head not in protected:
                remote_dir = join(self.remote_root, head) if head else self.remote_root
                published = self._attempt(lambda: read_manifest(remote_dir))
                protected[head] = (set(published.files) | {published.checkpoint}) if published else set()
            if name in protected[head]:
                continue
            fs, path = url_to_fs(join(self.remote_root, rel))
            self._attempt(lambda: _rm_if_present(fs, path))
            self._sent.pop(rel, None)

    def _attempt(self, action: Callable[[], T]) -> T:
        """Run a remote action, retrying with exponential backoff; raise _Outage when retries run out."""
        attempt = 0
        while True:
            try:
                return action()
            except Exception as exc:  # remote libraries raise OSError, HttpError, aiohttp and timeout errors alike
                self.failures += 1
                if attempt >= self.retries or self._stop.wait(self.backoff * 2 ** attempt):
                    raise _Outage(_reason(exc)) from exc
                attempt += 1


def _snapshot(src: str, dst: str) -> tuple[int, str]:
    """Copy src to dst and hash the copy in one pass: the upload then sends exactly the bytes that were hashed,
    however slow it is, while training rewrites src in place (Lightning saves by truncate-and-write)."""
    digest, size = hashlib.sha256(), 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        for block in iter(lambda: fin.read(1 << 20), b""):
            digest.update(block)
            fout.write(block)
            size += len(block)
    return size, digest.hexdigest()


def _reason(exc: BaseException) -> str:
    """An exception as one short line for the outage warning."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:160]}" if lines else type(exc).__name__


def _size_or_none(fs: fsspec.AbstractFileSystem, path: str) -> int | None:
    """Size of a remote file, or None when it is absent."""
    try:
        return int(fs.info(path)["size"])
    except FileNotFoundError:
        return None


def _rm_if_present(fs: fsspec.AbstractFileSystem, path: str) -> None:
    """Delete a remote file; one already gone is fine."""
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        pass
