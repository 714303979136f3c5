"""stop_request.json: `atheria stop` asks a run to stop from any machine; the run polls for it off the training thread.

Polled from a daemon thread so that a slow or failing remote (Drive, a bucket) never blocks or crashes training:
a read that fails just means "no request". A request found when the session starts was left from before it
(`atheria stop` applies to a running session), so it is removed, not honoured.
"""
from __future__ import annotations

import json
import socket
import threading
from typing import Any, Callable, Optional, Sequence

from atheria.session.status import utc_iso
from atheria.storage.atomic import write_bytes_atomic
from atheria.storage.paths import join, url_to_fs

STOP_NAME = "stop_request.json"


def request_stop(logs_dir: str, by: Optional[str] = None) -> dict[str, Any]:
    """Atomically write `{logs_dir}/stop_request.json` ({requested: ISO time, by: host}); returns what was written."""
    request = {"requested": utc_iso(), "by": by or socket.gethostname()}
    write_bytes_atomic(join(logs_dir, STOP_NAME), json.dumps(request).encode())
    return request


def read_stop_request(logs_dir: str) -> Optional[dict[str, Any]]:
    """The request in `logs_dir`, or None when there is none; a damaged file counts as a request by 'unknown'."""
    fs, path = url_to_fs(join(logs_dir, STOP_NAME))
    try:
        data = fs.cat_file(path)
    except FileNotFoundError:
        return None
    try:
        request = json.loads(data)
    except ValueError:
        request = None
    return request if isinstance(request, dict) else {"requested": None, "by": "unknown"}


def clear_stop_request(logs_dir: str) -> None:
    """Delete the request in `logs_dir`; one already gone is fine."""
    fs, path = url_to_fs(join(logs_dir, STOP_NAME))
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        pass


class StopRequests:
    """Watches the run's local and remote logs dirs for a stop request every `every_s` seconds."""

    def __init__(self, logs_dirs: Sequence[str], every_s: float = 10.0, say: Callable[[str], None] = print) -> None:
        self.logs_dirs, self.every_s, self.say = list(logs_dirs), every_s, say
        self.request: Optional[dict[str, Any]] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        """Start polling in the background; the first pass removes requests left from before this session."""
        self._thread = threading.Thread(target=self._poll, name="atheria-stop-requests", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop polling (without waiting for a remote call in flight)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def _poll(self) -> None:
        stale = self._sweep()
        if stale is not None:
            self.say(f"Removed a stop request from {stale.get('by')} ({stale.get('requested')}) left from before "
                     "this session; `atheria stop` applies to a running session.")
        while not self._stop.wait(self.every_s):
            found = self._sweep()
            if found is not None:
                self.request = found
                return

    def _sweep(self) -> Optional[dict[str, Any]]:
        """Read every dir; when any holds a request, delete it everywhere and return it."""
        found = None
        for logs_dir in self.logs_dirs:
            try:
                found = read_stop_request(logs_dir) or found
            except Exception:  # an unreachable remote: no request there, polled again next time
                continue
        if found is not None:
            for logs_dir in self.logs_dirs:
                try:
                    clear_stop_request(logs_dir)
                except Exception:  # best effort; a stale copy is removed at the next session's start
                    continue
        return found
