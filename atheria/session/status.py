"""status.json: a run's progress in one small file that `atheria status` can read from any machine."""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Optional

from atheria.session.outcome import SessionState
from atheria.storage.atomic import write_bytes_atomic
from atheria.storage.paths import join

STATUS_NAME = "status.json"


def utc_iso(t: Optional[float] = None) -> str:
    """An ISO 8601 UTC timestamp of `t` (epoch seconds, default now)."""
    return datetime.fromtimestamp(time.time() if t is None else t, timezone.utc).isoformat(timespec="seconds")


@dataclass
class Status:
    """What a user asks of a run from outside it: how far, how fast, when done, how safe."""

    name: str
    total: int
    state: str = SessionState.RUNNING
    episode: int = 0
    loss_smooth: Optional[float] = None
    episodes_per_min: Optional[float] = None
    eta_s: Optional[float] = None
    last_checkpoint: Optional[str] = None
    last_checkpoint_at: Optional[str] = None
    budget_hours: Optional[float] = None
    budget_used: Optional[float] = None
    cadence_s: Optional[float] = None
    sweep: Optional[str] = None
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    updated: str = field(default_factory=utc_iso)


def write_status(logs_dir: str, status: Status) -> None:
    """Atomically (re)write `{logs_dir}/status.json`."""
    status.updated = utc_iso()
    write_bytes_atomic(join(logs_dir, STATUS_NAME), json.dumps(asdict(status), indent=1).encode())


def read_status(logs_dir: str) -> Optional[Status]:
    """The status in `logs_dir`, or None when there is none or it is unreadable."""
    from atheria.storage.paths import url_to_fs

    fs, path = url_to_fs(join(logs_dir, STATUS_NAME))
    try:
        with fs.open(path, "rb") as f:
            data = json.loads(f.read())
        return Status(**{k: v for k, v in data.items() if k in Status.__dataclass_fields__})
    except (OSError, ValueError, TypeError, AttributeError):  # AttributeError: JSON that is not an object
        return None
