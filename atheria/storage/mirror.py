"""Mirror local checkpoints to durable storage in a background thread, so training never waits on slow storage.

Our own because Lightning writes checkpoints synchronously to one dirpath; a remote dirpath would stall
every save on the network and lose the run's latest pointer when the remote fails mid-write.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import posixpath
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Sequence, TypeVar

import fsspec

from atheria.errors import one_line
from atheria.storage.atomic import put_file_atomic
from atheria.storage.manifest import MANIFEST_NAME, FileEntry, Manifest, read_manifest, write_manifest
from atheria.storage.paths import is_remote, join, url_to_fs

log = logging.getLogger(__name__)  # routine skips and each failed attempt: the debug log, not the console
WARN_AFTER_S = 20.0  # a remote failing this long (its library's own retries included) gets its one console line
SNAPSHOT_MARK = ".mirror-"  # frozen copies are '.<name>.mirror-<mirror id>-<id>' beside their file

T = TypeVar("T")


@dataclass
class _Job:
    """What to mirror: plain files to upload (logs: copied when their upload starts), frozen checkpoint snapshots
    (rel path -> the snapshot taken when the job was submitted), manifests to publish per dir once their files are
    up, and files to delete after."""

    files: list[str]
    frozen: dict[str, str]
    manifests: dict[str, Manifest]
    delete: list[str]

    def merged(self, newer: _Job) -> tuple[_Job, list[str]]:
        """This job with a newer one folded in (newest manifest per dir and newest snapshot per file win), and the
        snapshots it no longer needs."""
        gone = set(newer.files) | set(newer.frozen) | set(newer.delete)
        files = [f for f in self.files if f not in gone] + newer.files
        delete = [d for d in self.delete if d not in newer.delete and d not in newer.files
                  and d not in newer.frozen] + newer.delete
        frozen = {rel: snap for rel, snap in self.frozen.items() if rel not in gone}
        frozen.update(newer.frozen)
        dropped = [snap for rel, snap in self.frozen.items() if rel in gone]
        return _Job(files, frozen, {**self.manifests, **newer.manifests}, delete), dropped


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

    The checkpoints a manifest names are frozen when they are submitted: a hard link (a copy where the disk has
    none) beside each, '.<name>.mirror-<mirror id>-<id>', holds exactly the bytes the manifest describes however long
    the upload takes, since checkpoints are replaced by rename, never rewritten in place. The manifest published after
    the upload therefore always describes what was sent, and the remote's pointer trails local by at most the job in
    flight plus one sync interval. Other files (logs) are copied when their upload starts.
    Failures: each remote call is retried with backoff for at most `retry_seconds` per job; a remote failing for
    WARN_AFTER_S (or a job that gives up) gets one console line, and one more when it is back.
    Counters: `uploads` and `bytes_uploaded` count files actually sent (unchanged files are skipped),
    `failures` counts failed attempts (each retry included), `last_job_seconds` times the last completed job.
    """

    def __init__(self, local_root: str, remote_root: str, *, retries: int = 4, backoff: float = 1.0,
                 retry_seconds: float = 60.0, say: Callable[[str], None] = print) -> None:
        if is_remote(local_root):
            raise ValueError(f"local_root {local_root!r} must be a local directory")
        url_to_fs(remote_root)  # an unknown protocol or a missing fsspec backend fails here, not in the thread
        self.local_root = url_to_fs(local_root)[1]
        self.remote_root = remote_root
        self.retries, self.backoff, self.retry_seconds, self.say = retries, backoff, retry_seconds, say
        self.last_job_seconds: float | None = None
        self.failures = self.uploads = self.bytes_uploaded = 0
        self._sent: dict[str, tuple[int, str]] = {}  # rel path -> (size, sha256) this Mirror last sent there
        self._down = False
        self._failing_since: float | None = None  # start of the first failed call of the current streak
        self._job_deadline = float("inf")
        self._mark = f"{SNAPSHOT_MARK}{uuid.uuid4().hex[:8]}-"  # names this Mirror's snapshots (see `owns`)
        self._stop = threading.Event()
        self._state = _State()
        self._thread = threading.Thread(target=self._work, name="atheria-mirror", daemon=True)
        self._thread.start()

    def submit(self, files: Sequence[str], *, manifest: Manifest | None = None, manifest_dir: str | None = None,
               delete: Sequence[str] = ()) -> None:
        """Queue files (paths relative to the roots) for upload; returns at once and merges with a queued job.
        Files the manifest names are frozen now. A path that could escape the roots is dropped with a warning:
        nothing here raises into training."""
        if (manifest is None) != (manifest_dir is None):
            raise ValueError("manifest and manifest_dir go together")
        if manifest_dir is not None and not _safe(self.remote_root, manifest_dir):
            manifest = manifest_dir = None
        files = [rel for rel in dict.fromkeys(files) if _safe(self.remote_root, rel)]
        delete = [rel for rel in dict.fromkeys(delete) if _safe(self.remote_root, rel)]
        listed = ({posixpath.join(manifest_dir, name) for name in manifest.files}
                  if manifest and manifest_dir is not None else set())
        frozen = {rel: snap for rel in files if rel in listed for snap in [self._freeze(rel)] if snap}
        plain = [rel for rel in files if rel not in listed]
        job = _Job(plain, frozen, {manifest_dir: manifest} if manifest_dir and manifest else {}, delete)
        s = self._state
        with s.cond:
            if s.closing:
                _remove(frozen.values())
                raise RuntimeError("Mirror is closed")
            dropped: list[str] = []
            if s.pending is None:
                s.pending = job
            else:
                s.pending, dropped = s.pending.merged(job)
            s.parked = False
            s.kicks += 1
            s.cond.notify_all()
        _remove(dropped)

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
        """Flush within timeout, then stop the thread; True when everything reached the remote. Snapshots of a job
        left unfinished stay on disk until the next session's start clears them."""
        start = time.monotonic()
        drained = self.wait(timeout)
        with self._state.cond:
            self._state.closing = True
            self._state.cond.notify_all()
        self._stop.set()
        self._thread.join(None if timeout is None else max(0.0, timeout - (time.monotonic() - start)))
        return drained

    def owns(self, path: str) -> bool:
        """True for a snapshot this Mirror made (and may still be sending); other snapshots are a killed session's
        leftovers, safe to delete under the experiment's lock."""
        return self._mark in os.path.basename(path)

    def _snapshot_name(self, local: str) -> str:
        """A fresh hidden name beside a local file for this Mirror's snapshot of it."""
        head, name = os.path.split(local)
        return os.path.join(head, f".{name}{self._mark}{uuid.uuid4().hex[:12]}")

    def _freeze(self, rel: str) -> str | None:
        """A snapshot of a local file under a hidden name beside it, made now; None when the file is gone."""
        local = join(self.local_root, rel)
        snapshot = self._snapshot_name(local)
        try:
            os.link(local, snapshot)
        except FileNotFoundError:
            log.debug("mirror: %s no longer exists locally; not uploading it", local)
            return None
        except OSError:  # no hard links on this disk: a copy, once, on the caller's thread
            try:
                shutil.copyfile(local, snapshot)
            except OSError as exc:  # gone, or no room for a copy: not sent now, the remote keeps its last manifest
                _remove([snapshot])
                log.debug("mirror: cannot snapshot %s (%s); not uploading it now", local, _why(exc))
                return None
        return snapshot

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
            assert job is not None  # the wait ends only with a pending job
            done = self._run(job)
            dropped: list[str] = []
            with s.cond:
                if not done:
                    if s.pending is None:
                        s.pending = job
                    else:
                        s.pending, dropped = job.merged(s.pending)
                    s.parked = s.kicks == kicks
                s.busy = False
                s.cond.notify_all()
            _remove(dropped if not done else job.frozen.values())

    def _run(self, job: _Job) -> bool:
        """Upload files, then publish verified manifests, then delete; False when the remote failed throughout."""
        start = time.monotonic()
        self._job_deadline = float("inf")
        try:
            for rel in job.files:  # logs first: a checkpoint on the remote never runs ahead of its metrics rows
                self._upload(rel)
            sent = {rel: self._upload_frozen(rel, snap) for rel, snap in job.frozen.items()}
            for manifest_dir, manifest in job.manifests.items():
                self._publish(manifest_dir, manifest, sent)
            self._delete(job.delete)
        except _Outage as exc:
            self._warn_down(str(exc))
            return False
        except Exception as exc:  # e.g. local disk full while snapshotting: the worker must outlive it
            log.debug("mirror job failed", exc_info=True)
            if not self._down:
                self.say(f"mirror job failed ({_why(exc)}); training goes on, will retry")
            self._down = True
            return False
        if self._down:
            self.say(f"remote {self.remote_root} reachable again; pending uploads are done")
        self._down, self._failing_since = False, None
        self.last_job_seconds = time.monotonic() - start
        return True

    def _warn_down(self, reason: str) -> None:
        """The one console line of an outage (later failures of the same outage go to the debug log)."""
        if not self._down and not self._stop.is_set():
            self.say(f"remote {self.remote_root} unreachable ({reason}); training goes on, will retry")
        self._down = True

    def _upload_frozen(self, rel: str, snapshot: str) -> tuple[int, str]:
        """Send a frozen snapshot unless these exact bytes are already there; returns its (size, sha256)."""
        signature = _signature(snapshot)
        self._send(rel, snapshot, signature)
        return signature

    def _upload(self, rel: str) -> None:
        """Send a copy of one file, taken now while training may append to it, unless those bytes were sent."""
        local = join(self.local_root, rel)
        copy = self._snapshot_name(local)
        try:
            try:
                source, signature = copy, _signature(local, copy_to=copy)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                source, signature = local, _signature(local)  # no room for a copy, so no room to append: send it as is
            self._send(rel, source, signature)
        except FileNotFoundError:
            log.debug("mirror: %s no longer exists locally; not uploading it", local)
        finally:
            _remove([copy])

    def _send(self, rel: str, snapshot: str, signature: tuple[int, str]) -> None:
        """Upload a snapshot atomically under rel, unless this Mirror already sent these exact bytes there."""
        if self._sent.get(rel) != signature:
            self._attempt(lambda: put_file_atomic(snapshot, join(self.remote_root, rel)))
            self._sent[rel] = signature
            self.uploads += 1
            self.bytes_uploaded += signature[0]

    def _publish(self, manifest_dir: str, manifest: Manifest, sent: dict[str, tuple[int, str]]) -> None:
        """Publish the manifest of what is on the remote: each file it names either sent in this job (its entry
        built from the snapshot's own size and sha256) or sent before with the same bytes and still there."""
        remote_dir = join(self.remote_root, manifest_dir)
        fs, dir_path = url_to_fs(remote_dir)
        fs.invalidate_cache(dir_path)  # fsspec caches listings; the sizes checked below must be current
        published = self._attempt(lambda: read_manifest(remote_dir))
        files: dict[str, FileEntry] = {}
        for name, entry in manifest.files.items():
            rel = posixpath.join(manifest_dir, name)
            if rel in sent:
                known: tuple[int, str] | None = sent[rel]
            elif rel in self._sent:
                known = self._sent[rel]
            else:  # sent by an earlier session: trust the published manifest that verified it then
                old = published.files.get(name) if published else None
                known = (old.size, old.sha256) if old else None
            remote_size = self._attempt(lambda: _size_or_none(fs, url_to_fs(join(remote_dir, name))[1]))
            if known is None or known != (entry.size, entry.sha256) or remote_size != entry.size:
                log.debug("mirror: not publishing %s (step %d): %s on the remote is not the file it lists",
                          join(remote_dir, MANIFEST_NAME), manifest.step, name)
                return
            files[name] = FileEntry(size=known[0], sha256=known[1], step=entry.step)
        self._attempt(lambda: write_manifest(remote_dir, Manifest(manifest.step, manifest.checkpoint, files,
                                                                           manifest.updated)))

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
        """Run a remote action, retrying with exponential backoff (capped at 8 s) while the job's retry time lasts;
        raise _Outage when retries run out. Each failure goes to the debug log; a long one to the console, once."""
        attempt = 0
        while True:
            called = time.monotonic()
            try:
                return action()
            except Exception as exc:  # remote libraries raise OSError, HttpError, aiohttp and timeout errors alike
                self.failures += 1
                now = time.monotonic()
                log.debug("mirror: remote call failed (attempt %d): %s", attempt + 1, _why(exc), exc_info=True)
                if self._failing_since is None:
                    self._failing_since = called
                if self._job_deadline == float("inf"):
                    self._job_deadline = called + self.retry_seconds
                if now - self._failing_since >= WARN_AFTER_S:
                    self._warn_down(_why(exc))
                pause = min(8.0, self.backoff * 2 ** attempt)
                if attempt >= self.retries or now + pause > self._job_deadline or self._stop.wait(pause):
                    raise _Outage(_why(exc)) from exc
                attempt += 1


def _safe(root: str, rel: str) -> bool:
    """True when rel is a plain relative path under root; otherwise log a warning (it came from a damaged or forged
    manifest, or a bug) and say False."""
    try:
        join(root, rel)
        return True
    except ValueError as exc:
        log.warning("mirror: ignoring %s", exc)
        return False


def _remove(paths: object) -> None:
    """Delete local snapshot files; ones already gone are fine."""
    for path in list(paths):  # type: ignore[call-overload]
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _signature(path: str, copy_to: str | None = None) -> tuple[int, str]:
    """(size, sha256) of a local file in one read, copying it to `copy_to` in the same pass: the upload then sends
    exactly the bytes that were hashed, however slow it is, while training appends to the original."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fin, (open(copy_to, "wb") if copy_to else contextlib.nullcontext()) as fout:
        for block in iter(lambda: fin.read(1 << 20), b""):
            digest.update(block)
            if fout is not None:
                fout.write(block)
            size += len(block)
    return size, digest.hexdigest()


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


def _why(exc: BaseException) -> str:
    """A remote library's exception as the short reason of a console line (its type says much: HttpError, timeout)."""
    return one_line(exc, 160, typed=True)
