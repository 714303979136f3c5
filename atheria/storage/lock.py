"""One process per experiment: a lock file in the experiment's checkpoint dir names its owner (pid, host, start),
is refreshed by a heartbeat while the owner runs, and is taken over once the owner is gone.

Our own because a notebook cell run twice starts a second process on the same files: two writers interleave
saves and manifests, and each prunes the other's checkpoints. The owner is gone when, on this host, its pid no
longer runs the process that wrote the lock, or, from another host (a shared disk), its heartbeat is stale.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Callable, Optional

import psutil

LOCK_NAME = ".lock"


class LockHeld(Exception):
    """Another live process holds the experiment's lock; the message names it in one line."""


@dataclass(frozen=True)
class Owner:
    """Who holds a lock: pid and host, when its process started (to tell a reused pid), its last heartbeat."""

    pid: int
    host: str
    process_start: float
    since: str
    heartbeat: float
    token: str


def _process_start(pid: int) -> Optional[float]:
    """The start time of a running process on this host, or None when no such process runs."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None


def _read(path: str) -> Optional[Owner]:
    """The owner named by a lock file, or None when it is missing or unreadable."""
    try:
        with open(path) as f:
            return Owner(**json.load(f))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        return Owner(pid=-1, host="?", process_start=0.0, since="?", heartbeat=0.0, token="unreadable")


def gone_reason(owner: Owner, stale_after_s: float, host: Optional[str] = None,
                now: Optional[float] = None) -> Optional[str]:
    """Why a lock's owner no longer holds it (its process ended, or its heartbeat is stale), or None if it does."""
    if owner.token == "unreadable":
        return "the lock file is unreadable"
    if owner.host == (host or socket.gethostname()):
        start = _process_start(owner.pid)
        if start is None:
            return f"pid {owner.pid} is gone"
        if abs(start - owner.process_start) > 1.0:
            return f"pid {owner.pid} is now another process"
        return None
    age = (time.time() if now is None else now) - owner.heartbeat
    return f"no heartbeat for {age:.0f} s" if age > stale_after_s else None


class ExperimentLock:
    """Holds `{dir}/.lock` for one experiment: acquire() before any work, release() at any exit."""

    def __init__(self, directory: str, name: str, *, heartbeat_s: float = 30.0, stale_after_s: float = 300.0,
                 say: Callable[[str], None] = print) -> None:
        self.directory, self.name, self.say = directory, name, say
        self.path = os.path.join(directory, LOCK_NAME)
        self.heartbeat_s, self.stale_after_s = heartbeat_s, stale_after_s
        self.owner = Owner(pid=os.getpid(), host=socket.gethostname(),
                           process_start=_process_start(os.getpid()) or time.time(),
                           since=datetime.now(timezone.utc).isoformat(timespec="seconds"), heartbeat=time.time(),
                           token=uuid.uuid4().hex)
        self._created: list[str] = []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def acquire(self) -> None:
        """Take the lock, taking over (with a one-line note) one whose owner is gone; LockHeld if it is alive."""
        self._make_dirs()
        for _ in range(3):
            if self._link():
                self._thread = threading.Thread(target=self._beat, name="atheria-lock", daemon=True)
                self._thread.start()
                return
            held = _read(self.path)
            if held is None:
                continue
            reason = gone_reason(held, self.stale_after_s)
            if reason is None:
                self._remove_created_dirs()
                raise LockHeld(f"experiment {self.name} is in use by pid {held.pid} on host {held.host} since "
                               f"{held.since} (lock {self.path}); wait for it to end, stop it (atheria stop, or "
                               f"kill {held.pid}), or use another name=")
            self.say(f"Taking over the lock of experiment {self.name} from pid {held.pid} on host {held.host} "
                     f"({reason}).")
            if _read(self.path) == held:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.path)
        self._remove_created_dirs()
        raise LockHeld(f"experiment {self.name}: another process keeps taking its lock {self.path}; try again")

    def release(self) -> None:
        """Stop the heartbeat and remove the lock if it is still ours (and the dirs made only for it, if empty)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        held = _read(self.path)
        if held is not None and held.token == self.owner.token:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)
        self._remove_created_dirs()

    def _link(self) -> bool:
        """Create the lock with its full content in one step: write a temp file, hard-link it to the lock name
        (which fails if the lock exists), drop the temp. False when the lock already exists."""
        tmp = self._write_temp(self.owner)
        try:
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        finally:
            os.remove(tmp)

    def _write_temp(self, owner: Owner) -> str:
        """Write an owner record to a hidden temp file beside the lock and return its path."""
        tmp = os.path.join(self.directory, f"{LOCK_NAME}.{owner.token}.{time.monotonic_ns()}")
        try:
            with open(tmp, "w") as f:
                json.dump(asdict(owner), f)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
            raise
        return tmp

    def _beat(self) -> None:
        """Refresh the heartbeat while the lock is ours; a failed refresh (e.g. a full disk) is tried again later.
        The refresh is written (and fsynced) first and the lock read just before the rename, so a takeover that lands
        during the slow write is seen, not overwritten (a read-then-write let one through 1 time in 3 in a stress
        run; the window left is the read and the rename)."""
        while not self._stop.wait(self.heartbeat_s):
            try:
                tmp = self._write_temp(Owner(**{**asdict(self.owner), "heartbeat": time.time()}))
            except OSError:
                continue
            held = _read(self.path)
            try:
                if held is None or held.token != self.owner.token:
                    return
                with contextlib.suppress(OSError):
                    os.replace(tmp, self.path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(tmp)

    def _make_dirs(self) -> None:
        """Create the lock's directory, remembering which levels did not exist (so a refused run leaves none)."""
        missing, head = [], os.path.abspath(self.directory)
        while not os.path.isdir(head):
            missing.append(head)
            head = os.path.dirname(head)
        os.makedirs(self.directory, exist_ok=True)
        self._created = missing

    def _remove_created_dirs(self) -> None:
        """Remove the directories acquire() created, deepest first, where they are still empty."""
        for folder in self._created:
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        self._created = []
