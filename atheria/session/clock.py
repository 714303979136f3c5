"""The session budget, framework-neutral: when the session started, and whether the next episode still fits.

Lightning's Timer counts training time across resumes and never saves; a platform kills the whole session,
so the clock here starts when the platform's session did and predicts, before each episode, whether that
episode plus the final save and mirror end before `stop_at` of the budget. bench/budget.py measures the rule over
simulated sessions (docs/benchmarks.md).
"""
from __future__ import annotations

import statistics
import time
from collections import deque
from typing import Callable, Literal, Optional

import psutil

# What each platform's session clock (platform.session_clock) counts from: the runtime container's first process, or
# this one (None).
SESSION_CLOCK_PID: dict[str, Optional[int]] = {"runtime": 1, "process": None}
# A slow outlier this session has not shown yet (a GC pause, a busy disk, a noisy neighbour): the next episode is
# planned at least this many typical episodes long. bench/budget.py's 2-4x outliers overran stop_at without it.
UNSEEN_OUTLIER = 3.0


def session_start(clock: Literal["runtime", "process"], override: Optional[float] = None) -> float:
    """Epoch seconds when the session began: the runtime container's first process for a platform whose session
    clock is the runtime's (Colab, Kaggle), else ours."""
    if override is not None:
        return float(override)
    pid = SESSION_CLOCK_PID[clock]
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return psutil.Process().create_time()


class BudgetClock:
    """Measures episode, save and sync durations and says when to stop so the budget is never overrun."""

    def __init__(self, max_hours: Optional[float], stop_at: float = 0.9, start: Optional[float] = None,
                 now: Callable[[], float] = time.time, window: int = 20, margin: float = 1.25) -> None:
        self.now = now
        self.start = now() if start is None else start
        self.budget_s = None if max_hours is None else max_hours * 3600.0
        self.stop_at = stop_at
        self.margin = margin
        self.episodes: deque[float] = deque(maxlen=window)
        self.warmup_s: Optional[float] = None
        self.slowest_s = 0.0
        self.save_s = 0.0
        self.sync_s = 0.0

    def elapsed(self) -> float:
        """Seconds since the session started."""
        return self.now() - self.start

    def fraction_used(self) -> float:
        """Share of the budget used so far (0 when there is no budget)."""
        return self.elapsed() / self.budget_s if self.budget_s else 0.0

    def remaining(self) -> Optional[float]:
        """Seconds left before the whole budget ends (None when unlimited)."""
        return None if self.budget_s is None else self.budget_s - self.elapsed()

    def note_episode(self, seconds: float) -> None:
        """Record one episode's duration; the session's first is its warm-up (compilation, autotuning, caches)."""
        if self.warmup_s is None:
            self.warmup_s = seconds
        else:
            self.slowest_s = max(self.slowest_s, seconds)
        self.episodes.append(seconds)

    def note_save(self, seconds: float) -> None:
        """Record a local save's duration; the worst one is what the final save is planned with."""
        self.save_s = max(self.save_s, seconds)

    def note_sync(self, seconds: float) -> None:
        """Record a completed mirror job's duration; the worst one plans the final mirror."""
        self.sync_s = max(self.sync_s, seconds)

    def reserve(self) -> float:
        """Time kept for the final save and mirror: a stop can write two checkpoints (the cadence one and
        last.ckpt), and note_save sees one file at a time."""
        return self.margin * (2 * self.save_s + self.sync_s)

    def next_episode(self) -> float:
        """Predicted duration of the next episode, with a margin: the slowest of this session after its warm-up (a
        slow outlier seen once can come again) and at least UNSEEN_OUTLIER recent typical ones; the warm-up itself
        until a second episode is known."""
        if self.warmup_s is None:
            return 0.0
        if not self.slowest_s:
            return self.margin * self.warmup_s
        return self.margin * max(self.slowest_s, UNSEEN_OUTLIER * statistics.median(self.episodes))

    def should_stop(self) -> bool:
        """True when the next episode and the final save/mirror would end after `stop_at` of the budget.
        A cadence save may also run before the next episode: checkpoints save after the stop is decided."""
        if self.budget_s is None:
            return False
        ahead = self.next_episode() + self.margin * self.save_s + self.reserve()
        return self.elapsed() + ahead > self.stop_at * self.budget_s

    def episodes_that_fit(self) -> Optional[int]:
        """How many more episodes fit before the stop point at the current pace (None when unlimited)."""
        if self.budget_s is None:
            return None
        pace = sum(self.episodes) / len(self.episodes) if self.episodes else 0.0
        left = self.stop_at * self.budget_s - self.elapsed() - self.reserve()
        return max(0, int(left // pace)) if pace > 0 else None
