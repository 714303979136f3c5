"""events.jsonl: the run's timeline across sessions (starts, resumes, saves, mirrors, stops) for plots and reports."""
from __future__ import annotations

import json
import os
from typing import Any

from atheria.session.status import utc_iso

EVENTS_NAME = "events.jsonl"


class EventLog:
    """Appends one JSON line per event to `{logs_dir}/events.jsonl` (local; mirrored with the logs)."""

    def __init__(self, logs_dir: str) -> None:
        self.path = os.path.join(logs_dir, EVENTS_NAME)

    def add(self, kind: str, episode: int, **detail: Any) -> None:
        """Record that `kind` happened at `episode`, with any JSON-able details."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        line = json.dumps({"t": utc_iso(), "event": kind, "episode": episode, **detail}) + "\n"
        with open(self.path, "ab+") as f:
            end = f.seek(0, os.SEEK_END)
            if end:
                f.seek(end - 1)
                if f.read(1) != b"\n":  # a kill cut the last line short: this one starts on its own line
                    line = "\n" + line
            f.write(line.encode())


def read_events(logs_dir: str) -> list[dict[str, Any]]:
    """Every event recorded for an experiment, oldest first; unreadable lines (a cut-off write) are skipped."""
    path = os.path.join(logs_dir, EVENTS_NAME)
    if not os.path.isfile(path):
        return []
    events = []
    with open(path) as f:
        for line in f:
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events
