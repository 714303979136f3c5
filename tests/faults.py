"""A misbehaving remote for tests and benchmarks: 'faulty://NAME/...' wraps a real directory or fsspec root.

Configure it with `faulty(NAME, ROOT, latency=..., bandwidth=..., fail_first=..., fail_always=..., quota=...)`,
which registers NAME and returns its Faults; then use `faults.url` ('faulty://NAME') as a remote root and
change the returned object's fields at any time (e.g. `faults.fail_always = False` to bring it back up).
The first path part of a faulty URL picks the registered entry, so one fsspec instance serves every NAME.

- latency: seconds slept on every call;   bandwidth: bytes/s for writes (streamed in chunks of `chunk` bytes, 16 kB
  by default, so a slow upload leaves a growing partial file on the wrapped fs, like a real one);
- fail_first: the first N writes (put_file, pipe_file) write half their bytes and raise OSError(EIO);
- fail_always: every call raises OSError(EIO), a remote that stays down;
- quota: total bytes allowed under ROOT; a write beyond it stops at the quota and raises OSError(ENOSPC).
"""
from __future__ import annotations

import errno
import posixpath
import threading
import time
from dataclasses import dataclass, field

import fsspec
from fsspec import AbstractFileSystem

from atheria.storage.paths import url_to_fs

PROTOCOL = "faulty"
_CHUNK = 16 * 1024


@dataclass
class Faults:
    """How one faulty remote misbehaves; fields may be changed while it is in use."""

    name: str
    root: str
    latency: float = 0.0
    bandwidth: float | None = None
    fail_first: int = 0
    fail_always: bool = False
    quota: int | None = None
    chunk: int = _CHUNK
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def url(self) -> str:
        """The root URL of this remote, 'faulty://NAME'."""
        return f"{PROTOCOL}://{self.name}"


_REGISTRY: dict[str, Faults] = {}


def faulty(name: str, root: str, *, latency: float = 0.0, bandwidth: float | None = None, fail_first: int = 0,
           fail_always: bool = False, quota: int | None = None, chunk: int = _CHUNK) -> Faults:
    """Register (or replace) the faulty remote NAME over ROOT and return its settings object."""
    faults = Faults(name, root, latency, bandwidth, fail_first, fail_always, quota, chunk)
    _REGISTRY[name] = faults
    return faults


class FaultyFileSystem(AbstractFileSystem):
    """fsspec filesystem that forwards to the registered root, adding latency, throttling and failures."""

    protocol = PROTOCOL

    def _target(self, path: str) -> tuple[Faults, AbstractFileSystem, str]:
        """Settings, wrapped fs and wrapped path for a faulty path; sleeps the latency and fails when down."""
        name, _, rest = self._strip_protocol(path).strip("/").partition("/")
        if name not in _REGISTRY:
            raise FileNotFoundError(f"{PROTOCOL}://{name} is not registered (call faults.faulty first)")
        faults = _REGISTRY[name]
        time.sleep(faults.latency)
        if faults.fail_always:
            raise OSError(errno.EIO, f"{faults.url} is down")
        fs, base = url_to_fs(faults.root)
        return faults, fs, posixpath.join(base, rest) if rest else base

    def _outer(self, faults: Faults, base: str, inner_path: str) -> str:
        """Map a wrapped path back to its faulty path."""
        return posixpath.join(faults.name, posixpath.relpath(inner_path, base))

    def ls(self, path: str, detail: bool = True, **kwargs: object) -> list:
        """List a wrapped dir, with names mapped back under NAME."""
        faults, fs, inner = self._target(path)
        base = url_to_fs(faults.root)[1]
        infos = [{**info, "name": self._outer(faults, base, info["name"])} for info in fs.ls(inner, detail=True)]
        return infos if detail else [info["name"] for info in infos]

    def info(self, path: str, **kwargs: object) -> dict:
        """The wrapped file's info under its faulty name."""
        faults, fs, inner = self._target(path)
        return {**fs.info(inner), "name": self._strip_protocol(path)}

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: object) -> bytes:
        """Read bytes from the wrapped file."""
        _, fs, inner = self._target(path)
        return fs.cat_file(inner, start=start, end=end)

    def _open(self, path: str, mode: str = "rb", **kwargs: object):
        """Open for reading only; writes go through the throttled, failing put_file/pipe_file."""
        if "r" not in mode:
            raise NotImplementedError("faulty:// writes go through put_file or pipe_file")
        _, fs, inner = self._target(path)
        return fs.open(inner, mode)

    def put_file(self, lpath: str, rpath: str, **kwargs: object) -> None:
        """Upload a local file through the configured faults."""
        with open(lpath, "rb") as src:
            self._write(rpath, src.read())

    def pipe_file(self, path: str, value: bytes, **kwargs: object) -> None:
        """Write bytes through the configured faults."""
        self._write(path, value)

    def mv(self, path1: str, path2: str, **kwargs: object) -> None:
        """Rename within the wrapped root (atomic when it is a local directory)."""
        _, fs, inner1 = self._target(path1)
        _, _, inner2 = self._target(path2)
        fs.mv(inner1, inner2)

    def rm_file(self, path: str) -> None:
        """Delete one wrapped file."""
        _, fs, inner = self._target(path)
        fs.rm_file(inner)

    def rm(self, path: str, recursive: bool = False, maxdepth: int | None = None) -> None:
        """Delete wrapped files."""
        _, fs, inner = self._target(path)
        fs.rm(inner, recursive=recursive, maxdepth=maxdepth)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Create a wrapped directory."""
        _, fs, inner = self._target(path)
        fs.makedirs(inner, exist_ok=exist_ok)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: object) -> None:
        """Create a wrapped directory (with parents)."""
        self.makedirs(path, exist_ok=True)

    def invalidate_cache(self, path: str | None = None) -> None:
        """Drop the wrapped filesystems' listing caches."""
        for faults in _REGISTRY.values():
            url_to_fs(faults.root)[0].invalidate_cache()

    def _write(self, path: str, data: bytes) -> None:
        """Stream data to the wrapped fs in chunks at the configured bandwidth, failing as configured."""
        faults, fs, inner = self._target(path)
        with faults.lock:
            failing = faults.fail_first > 0
            if failing:
                faults.fail_first -= 1
        quota = faults.quota  # read once: a test may lift it from another thread meanwhile
        room = None if quota is None else max(0, quota - self._used(fs, url_to_fs(faults.root)[1]))
        stop = len(data) // 2 if failing else len(data) if room is None else min(room, len(data))
        fs.makedirs(posixpath.dirname(inner), exist_ok=True)
        with fs.open(inner, "wb") as out:
            for i in range(0, stop, faults.chunk):
                piece = data[i:min(i + faults.chunk, stop)]
                out.write(piece)
                out.flush()
                if faults.bandwidth:
                    time.sleep(len(piece) / faults.bandwidth)
        if failing:
            raise OSError(errno.EIO, f"{faults.url}: injected failure while writing {path}")
        if stop < len(data):
            raise OSError(errno.ENOSPC, f"{faults.url}: quota of {quota} bytes exceeded writing {path}")

    @staticmethod
    def _used(fs: AbstractFileSystem, base: str) -> int:
        """Bytes currently stored under the wrapped root."""
        return sum(fs.du(base, total=False).values()) if fs.exists(base) else 0


fsspec.register_implementation(PROTOCOL, FaultyFileSystem, clobber=True)
