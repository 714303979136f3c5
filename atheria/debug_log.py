"""The session's debug log, logs/{name}/debug.log: storage libraries' retries and tracebacks and Atheria's routine
details go there, never to the console, where a remote outage is one Atheria line instead of a 25-line traceback.
Atheria's own warnings (logger "atheria") still reach the console, one line each."""
from __future__ import annotations

import logging
import os
import sys

from atheria.storage.traits import QUIET

NAME = "debug.log"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _DirFileHandler(logging.FileHandler):
    """A FileHandler that holds its records in memory until the session is accepted (keep_debug_log), then creates
    its file (and folder): a run refused before training leaves no folder behind, and no logs folder appears on a
    fresh machine before the remote's logs are restored into it."""

    def __init__(self, path: str) -> None:
        super().__init__(path, encoding="utf-8", delay=True)
        self.held: list[logging.LogRecord] | None = []

    def emit(self, record: logging.LogRecord) -> None:
        if self.held is None:
            super().emit(record)
        else:
            self.held.append(record)

    def keep(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            held, self.held = self.held or [], None
        for record in held:
            super().emit(record)

    def _open(self):  # type: ignore[no-untyped-def]
        os.makedirs(os.path.dirname(self.baseFilename), exist_ok=True)
        return super()._open()


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at each record (a test's or notebook's capture may replace and close it)."""

    @property  # type: ignore[override]
    def stream(self):  # type: ignore[no-untyped-def]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # type: ignore[no-untyped-def]
        pass


_installed: list[tuple[logging.Logger, logging.Handler]] = []


def open_debug_log(logs_dir: str) -> str:
    """Send this session's detail to {logs_dir}/debug.log (replacing an earlier session's in this process, as a
    sweep runs several) and keep the storage libraries off the console; returns the file's path."""
    close_debug_log()
    path = os.path.join(logs_dir, NAME)
    handler = _DirFileHandler(path)
    handler.setFormatter(logging.Formatter(_FORMAT))
    console = _Stderr()
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("warning: %(message)s"))
    atheria = logging.getLogger("atheria")
    atheria.setLevel(logging.DEBUG)
    atheria.propagate = False
    for logger, target in [(atheria, handler), (atheria, console)] + [(logging.getLogger(n), handler) for n in QUIET]:
        logger.addHandler(target)
        _installed.append((logger, target))
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.INFO)
        logging.getLogger(name).propagate = False
    return path


def keep_debug_log() -> None:
    """The session is accepted: write what was held and everything after to the file."""
    for _, handler in _installed:
        if isinstance(handler, _DirFileHandler):
            handler.keep()


def close_debug_log() -> None:
    """Detach the handlers open_debug_log installed and close the file."""
    while _installed:
        logger, handler = _installed.pop()
        logger.removeHandler(handler)
        logger.propagate = True
        handler.close()
