"""The budget clock with an injected clock: it stops before stop_at, keeping time for the final save and sync."""
import time

import psutil
import pytest

from atheria.session.clock import UNSEEN_OUTLIER, BudgetClock, session_start


class FakeTime:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_no_budget_never_stops():
    now = FakeTime()
    clock = BudgetClock(None, start=0, now=now)
    now.t = 1e9
    assert not clock.should_stop() and clock.remaining() is None and clock.episodes_that_fit() is None


def test_stops_when_the_next_episode_would_pass_stop_at():
    now = FakeTime(0.0)
    clock = BudgetClock(1.0, stop_at=0.9, start=0.0, now=now, margin=1.0)  # stop point: 3240 s
    clock.note_episode(100.0)
    now.t = 3100.0
    assert not clock.should_stop()  # 3100 + 100 <= 3240
    now.t = 3141.0
    assert clock.should_stop()  # 3141 + 100 > 3240


def test_final_save_and_sync_are_kept_in_reserve():
    now = FakeTime(0.0)
    clock = BudgetClock(1.0, stop_at=0.9, start=0.0, now=now, margin=1.0)
    clock.note_episode(10.0)
    now.t = 3000.0
    assert not clock.should_stop()
    clock.note_save(100.0)
    clock.note_sync(150.0)
    assert clock.reserve() == 350.0  # a stop may write two checkpoints, then mirror
    assert clock.should_stop()  # 3000 + 10 + 100 (a cadence save) + 350 > 3240


def test_a_cadence_save_before_the_next_episode_is_planned_for():
    now = FakeTime(3000.0)
    clock = BudgetClock(1.0, stop_at=0.9, start=0.0, now=now, margin=1.0)
    clock.note_episode(10.0)
    clock.note_save(40.0)
    assert clock.reserve() == 80.0
    assert not clock.should_stop()  # 3000 + 10 + 40 + 80 <= 3240
    now.t = 3111.0
    assert clock.should_stop()  # 3111 + 10 + 40 + 80 > 3240


def test_prediction_uses_the_sessions_slowest_episode_after_its_warm_up():
    clock = BudgetClock(1.0, now=FakeTime(), margin=1.25, window=3)
    clock.note_episode(90.0)  # the warm-up (compilation, autotuning): all there is to go by
    assert clock.next_episode() == pytest.approx(112.5)
    for seconds in (10.0, 40.0, 10.0, 10.0, 10.0):
        clock.note_episode(seconds)
    assert clock.next_episode() == pytest.approx(50.0)  # the 40 s outlier is remembered past the window


def test_an_outlier_not_seen_yet_is_planned_for():
    clock = BudgetClock(1.0, now=FakeTime(), margin=1.0)
    for seconds in (90.0, 10.0, 10.0, 10.0, 12.0):
        clock.note_episode(seconds)
    assert clock.next_episode() == pytest.approx(UNSEEN_OUTLIER * 10.0)  # more than the slowest seen, 12 s


def test_episodes_that_fit_and_fraction_used():
    now = FakeTime(1800.0)
    clock = BudgetClock(1.0, stop_at=0.9, start=0.0, now=now)
    clock.note_episode(60.0)
    assert clock.fraction_used() == pytest.approx(0.5)
    assert clock.remaining() == pytest.approx(1800.0)
    assert clock.episodes_that_fit() == (3240 - 1800) // 60


def test_session_start_override_and_session_clocks():
    assert session_start("runtime", override=123.0) == 123.0
    assert session_start("process") == pytest.approx(psutil.Process().create_time())
    assert session_start("runtime") == pytest.approx(psutil.Process(1).create_time())
    assert session_start("runtime") <= time.time()
