"""`budget`: does the session budget stop in time and use the session well? 200 simulated sessions drive the real
BudgetClock with a fake clock, in the order the callbacks call it, with noisy episode times, slow outliers, a slow
warm-up episode and a slow final save.

    python -m bench.budget [--quick]

A session: budget 1, 2, 9, 10 or 20 h, of which 1-10 min are already gone when training starts (the runtime's
set-up); episodes of 5-90 s (log-uniform per session) with 10% jitter, 1% outliers 2-4x slower, the first one 2-10x
slower; a save every 5, 10 or 20 episodes (median 2 s, log-normal); with a remote (2, 10, 20 h budgets), a mirror job
every 20, 50 or 100 episodes (median 30 s, widely spread) whose duration the clock learns when it completes; at the
stop a final save 1.5-3x slower than a usual one. Used: when the final save ends, as a share of the budget.
Overrun: the final save ends after stop_at x budget.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Optional, Sequence

from atheria.session.clock import BudgetClock
from bench.common import median, note, parse_quick, result

STOP_AT = 0.9
BUDGETS_H = (1.0, 2.0, 9.0, 10.0, 20.0)
WITH_REMOTE = {2.0, 10.0, 20.0}


class FakeTime:
    """The injected clock: simulated seconds since the session began."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass(frozen=True)
class Session:
    """How one simulated session behaves (drawn once per session)."""

    budget_h: float
    setup_s: float
    episode_s: float
    save_every: int
    sync_every: Optional[int]


def draw_session(rng: random.Random) -> Session:
    """A session of the mix described in the module docstring."""
    budget_h = rng.choice(BUDGETS_H)
    return Session(budget_h, rng.uniform(60, 600), math.exp(rng.uniform(math.log(5), math.log(90))),
                   rng.choice((5, 10, 20)), rng.choice((20, 50, 100)) if budget_h in WITH_REMOTE else None)


def episode_seconds(rng: random.Random, s: Session, index: int) -> float:
    """One episode: 10% log-normal jitter, 1% slow outliers (2-4x), the session's first episode 2-10x (warm-up)."""
    seconds = s.episode_s * rng.lognormvariate(0.0, 0.1)
    if index == 0:
        return seconds * rng.uniform(2, 10)
    return seconds * rng.uniform(2, 4) if rng.random() < 0.01 else seconds


def save_seconds(rng: random.Random) -> float:
    """One local checkpoint save (median 2 s)."""
    return 2.0 * rng.lognormvariate(0.0, 0.5)


def simulate(rng: random.Random, s: Session) -> tuple[float, bool]:
    """Run one session the way SessionCallback and TieredCheckpoint drive the clock; (share used, overran)."""
    now = FakeTime(s.setup_s)
    clock = BudgetClock(s.budget_h, STOP_AT, start=0.0, now=now)
    stop_point = STOP_AT * s.budget_h * 3600
    episode, mirror_job = 0, None
    stop = clock.should_stop()  # on_train_start
    while not stop:
        seconds = episode_seconds(rng, s, episode)
        now.t += seconds
        episode += 1
        clock.note_episode(seconds)  # SessionCallback.on_train_batch_end: measure, then decide
        stop = clock.should_stop()
        if stop:
            break
        if episode % s.save_every == 0:  # TieredCheckpoint runs after it: the cadence save, then maybe a sync
            saved = save_seconds(rng)
            now.t += saved
            clock.note_save(saved)
            if s.sync_every and episode % s.sync_every == 0:
                if mirror_job is not None:
                    clock.note_sync(mirror_job)
                mirror_job = 30.0 * rng.lognormvariate(0.0, 0.7)
    now.t += save_seconds(rng) * rng.uniform(1.5, 3.0)  # the final save at the stop
    return now.t / (s.budget_h * 3600), now.t > stop_point


def run(sessions: int, seed: int = 7) -> tuple[list[float], int]:
    """Simulate `sessions` sessions; the share of the budget each used, and how many overran stop_at."""
    rng = random.Random(seed)
    used, overruns = [], 0
    for _ in range(sessions):
        share, overran = simulate(rng, draw_session(rng))
        used.append(share)
        overruns += overran
    return used, overruns


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th quantile (nearest rank) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Simulate 200 sessions (1000 in the full variant) and report the median share used and the overruns."""
    sessions = 200 if parse_quick(__doc__.splitlines()[0], argv) else 1000
    used, overruns = run(sessions)
    note(f"{sessions} sessions, stop_at {STOP_AT}: share of the budget used min {min(used):.3f}, "
         f"5th percentile {percentile(used, 0.05):.3f}, median {median(used):.3f}, max {max(used):.3f}")
    result("budget.median_used", median(used), "fraction")
    result("budget.p05_used", percentile(used, 0.05), "fraction")
    result("budget.overruns", overruns, "sessions")


if __name__ == "__main__":
    main()
