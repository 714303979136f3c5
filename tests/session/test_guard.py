"""SessionGuard without a framework: why a session stops (complete, signal, request, budget), what it says, the
timeline it records and the status.json it writes."""
import json
import os
import signal
import subprocess
import sys

import pytest

from atheria.session.clock import BudgetClock
from atheria.session.events import read_events
from atheria.session.guard import SessionGuard
from atheria.session.status import STATUS_NAME, Status
from atheria.session.stop_request import request_stop
from tests.helpers import REPO, wait_for


class FakeTime:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def said():
    return []


@pytest.fixture
def make(tmp_path, said):
    """make(max_hours=None, **guard kwargs): a guard over a fake-time clock, its logs under tmp_path/logs."""
    guards = []

    def build(max_hours=None, **kwargs):
        clock = BudgetClock(max_hours, stop_at=0.9, start=0.0, now=FakeTime(), margin=1.0)
        guard = SessionGuard(clock, Status("exp", 10), str(tmp_path / "logs"), say=said.append, **kwargs)
        guards.append(guard)
        return guard

    yield build
    for guard in guards:
        guard.close()


def status_json(tmp_path):
    return json.loads((tmp_path / "logs" / STATUS_NAME).read_text())


def test_a_run_at_its_total_is_complete_and_one_without_a_total_never_is(make, said):
    guard = make()
    assert guard.reason(9, 10) is None
    assert guard.reason(10, 10) == "completed" and guard.reason(11, 10) == "completed"
    assert guard.reason(10**9, None) is None
    assert said == []


def test_a_signal_finishes_the_episode_then_stops_and_the_handlers_are_given_back(make, said):
    before = signal.getsignal(signal.SIGTERM)
    guard = make()
    guard.begin(0)
    assert signal.getsignal(signal.SIGTERM) == guard._on_signal
    os.kill(os.getpid(), signal.SIGTERM)
    wait_for(lambda: guard.signal_name is not None, timeout=5, every=0.01)
    assert guard.signal_name == "SIGTERM"
    assert said == ["SIGTERM received: finishing this episode, then saving and mirroring (Ctrl+C again to exit at "
                    "once)."]
    assert guard.reason(3, 10) == "stopped-signal"
    assert guard.reason(10, 10) == "completed"  # the last episode done: complete, however it was asked to stop
    guard.close()
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_second_interrupt_exits_at_once_with_130(tmp_path):
    code = f"""
import os, signal, time
from atheria.session.clock import BudgetClock
from atheria.session.guard import SessionGuard
from atheria.session.status import Status
guard = SessionGuard(BudgetClock(None), Status("exp", 10), {str(tmp_path / "logs")!r})
guard.begin(0)
os.kill(os.getpid(), signal.SIGINT)
time.sleep(0.1)
os.kill(os.getpid(), signal.SIGINT)
time.sleep(5)
print("still running")
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130, proc.stderr
    assert proc.stdout.splitlines() == [
        "SIGINT received: finishing this episode, then saving and mirroring (Ctrl+C again to exit at once).",
        "Second interrupt: exiting now. The last saved checkpoint is intact; rerun the same command."]


def test_a_stop_request_in_the_remote_logs_stops_the_session(make, said, tmp_path):
    remote = f"memory://guard-{tmp_path.name}/logs"
    guard = make(remote_logs_dir=remote)
    guard.requests.every_s = 0.05
    request_stop(remote, by="yesterday")  # left from before: the first sweep removes it, and then we know it ran
    guard.begin(0)
    wait_for(lambda: any("from yesterday" in line for line in said), timeout=5, every=0.01)
    assert guard.reason(1, 10) is None
    request_stop(remote, by="laptop")
    wait_for(lambda: guard.requests.request is not None, timeout=5, every=0.01)
    assert guard.reason(4, 10) == "stopped-request"
    assert said[-1] == "Stop requested by laptop (atheria stop): stopping at episode 4, saving and mirroring."


def test_the_budget_stops_the_session_before_stop_at_and_warns_once_at_90_percent(make, said):
    guard = make(max_hours=1.0)  # stop point: 3240 s
    guard.clock.note_episode(100.0)
    guard.clock.now.t = 3000.0
    assert guard.reason(5, 10) is None and said == []
    guard.clock.stop_at = 1.0  # the warning comes from the share used, whatever stop_at is
    guard.clock.now.t = 3300.0
    assert guard.reason(6, 10) is None and guard.reason(7, 10) is None
    assert said == ["Warning: 90% of the session budget used at episode 6."]
    guard.clock.stop_at = 0.9
    assert guard.reason(8, 10) == "stopped-budget"
    assert said[-1] == ("Stopping at episode 8: the next episode and the final save would pass 90% of the 1 h budget "
                        "(92% used).")


def test_begin_records_a_start_or_a_resume_and_announces_the_budget(make, said, tmp_path):
    make(max_hours=2.0).begin(0)
    assert said == ["Session budget 2 h, 0% used at start; stops at 90% with time kept for the final save and "
                    "mirror."]
    make().begin(6)
    assert len(said) == 1  # no budget, nothing to announce
    events = read_events(str(tmp_path / "logs"))
    assert [(e["event"], e["episode"], e["budget_hours"]) for e in events] == [("start", 0, 2.0), ("resume", 6, None)]


def test_end_records_the_state_and_the_stop_event(make, tmp_path):
    guard = make()
    guard.end(7, "stopped-budget", best=0.5)
    assert guard.status.state == "stopped-budget"
    stop = read_events(str(tmp_path / "logs"))[-1]
    assert (stop["event"], stop["episode"], stop["reason"], stop["best"]) == ("stop", 7, "stopped-budget", 0.5)


def test_status_is_written_at_its_cadence_or_when_forced_and_then_published(make, tmp_path):
    published = []
    ckpt = tmp_path / "last.ckpt"
    ckpt.write_bytes(b"weights")
    guard = make(max_hours=1.0, status_every_s=3600.0, publish=lambda: published.append(1))
    guard.begin(0)
    guard.clock.now.t = 900.0
    guard._session_t0 -= 120.0  # two minutes into the session
    guard.write_status(4, loss_smooth=0.5, last_checkpoint=str(ckpt), force=True)
    st = status_json(tmp_path)
    assert (st["episode"], st["loss_smooth"], st["budget_used"], st["cadence_s"]) == (4, 0.5, 0.25, 3600.0)
    assert st["episodes_per_min"] == pytest.approx(2.0, rel=0.01)
    assert st["eta_s"] == pytest.approx(180.0, rel=0.01)  # 6 episodes left at 2 a minute
    assert st["last_checkpoint"] == str(ckpt) and st["last_checkpoint_at"]
    assert published == [1]
    guard.write_status(5)
    assert status_json(tmp_path)["episode"] == 4 and published == [1]  # within the cadence: not rewritten
    guard.end(6, "stopped-signal")
    guard.write_status(6, force=True)
    st = status_json(tmp_path)
    assert (st["episode"], st["state"], st["last_checkpoint"]) == (6, "stopped-signal", str(ckpt))
    assert published == [1, 1]


def test_a_missing_checkpoint_is_not_named_and_no_budget_is_no_share(make, tmp_path):
    guard = make()
    guard.begin(0)
    guard.write_status(0, last_checkpoint=str(tmp_path / "gone.ckpt"), force=True)
    st = status_json(tmp_path)
    assert st["last_checkpoint"] is None and st["budget_used"] is None
    assert st["episodes_per_min"] is None and st["eta_s"] is None


def test_other_ranks_neither_write_nor_announce(make, said, tmp_path):
    guard = make(max_hours=1.0)
    guard.primary = False
    published = []
    guard.publish = lambda: published.append(1)
    guard.begin(0)
    guard.write_status(3, force=True)
    guard.end(3, "completed")
    assert said == [] and published == []
    assert not (tmp_path / "logs" / STATUS_NAME).exists() and read_events(str(tmp_path / "logs")) == []
