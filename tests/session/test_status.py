"""status.json and events.jsonl: written whole, read back from any dir, and a damaged file never raises."""
import json
import os
import socket
from datetime import datetime, timezone

import pytest

from atheria.session.events import EVENTS_NAME, EventLog, read_events
from atheria.session.status import STATUS_NAME, Status, read_status, utc_iso, write_status


def test_utc_iso_is_seconds_in_utc():
    assert utc_iso(0) == "1970-01-01T00:00:00+00:00"
    assert abs(datetime.fromisoformat(utc_iso()) - datetime.now(timezone.utc)).total_seconds() < 5


def test_a_new_status_is_running_here_at_episode_zero():
    status = Status("exp", 100)
    assert (status.state, status.episode, status.host, status.pid) == ("running", 0, socket.gethostname(), os.getpid())
    assert status.loss_smooth is None and status.eta_s is None and status.last_checkpoint is None


@pytest.mark.parametrize("logs", ["local", "memory"])
def test_a_status_written_is_read_back_with_a_fresh_update_time(tmp_path, logs):
    logs_dir = str(tmp_path / "logs") if logs == "local" else f"memory://status-{tmp_path.name}/logs"
    status = Status("exp", 100, state="stopped-budget", episode=42, loss_smooth=0.25, budget_hours=10.0,
                    updated="2000-01-01T00:00:00+00:00")
    write_status(logs_dir, status)
    assert status.updated != "2000-01-01T00:00:00+00:00"
    assert read_status(logs_dir) == status
    if logs == "local":
        assert json.loads((tmp_path / "logs" / STATUS_NAME).read_text())["episode"] == 42
        assert os.listdir(tmp_path / "logs") == [STATUS_NAME]  # the atomic write leaves no temp file


def test_keys_a_newer_version_adds_are_ignored(tmp_path):
    (tmp_path / STATUS_NAME).write_text(json.dumps({"name": "exp", "total": 5, "episode": 3, "from_the_future": 1}))
    status = read_status(str(tmp_path))
    assert status is not None and (status.name, status.total, status.episode) == ("exp", 5, 3)


@pytest.mark.parametrize("content", [None, "{cut off", json.dumps({"episode": 3}), "[1]"])
def test_a_missing_or_damaged_status_reads_as_none(tmp_path, content):
    if content is not None:
        (tmp_path / STATUS_NAME).write_text(content)
    assert read_status(str(tmp_path)) is None


def test_events_are_appended_in_order_and_a_cut_off_line_is_skipped_alone(tmp_path):
    logs_dir = str(tmp_path / "logs")
    assert read_events(logs_dir) == []
    log = EventLog(logs_dir)
    log.add("start", 0, budget_hours=2.0)
    log.add("stop", 7, reason="completed")
    with open(os.path.join(logs_dir, EVENTS_NAME), "a") as f:
        f.write('{"t": "2000-01-01T00:00:00+00:00", "event": "mir')
    EventLog(logs_dir).add("resume", 7)  # the next session's first event: not swallowed by the cut-off line
    events = read_events(logs_dir)
    assert [(e["event"], e["episode"]) for e in events] == [("start", 0), ("stop", 7), ("resume", 7)]
    assert events[0]["budget_hours"] == 2.0 and events[1]["reason"] == "completed"
    assert all(datetime.fromisoformat(e["t"]).tzinfo is not None for e in events)
