"""How a session ends: its state (status.json's `state`), the exit code and objective it hands back, and the one
closing line each way of ending gets, counted in the task's own unit (episodes, or an agent's steps)."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional


class SessionState(str, Enum):
    """status.json's `state`; a str, so it is written, read and compared as its plain value."""

    RUNNING = "running"
    COMPLETED = "completed"
    EARLY = "early"  # completed before run.total_episodes: run.early_stop ended it (a closing line, not a status)
    STOPPED_BUDGET = "stopped-budget"
    STOPPED_SIGNAL = "stopped-signal"
    STOPPED_REQUEST = "stopped-request"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Outcome:
    """How a session of one experiment ended: the exit code, and the best smoothed loss (a sweep's objective)."""

    code: int
    best_loss: Optional[float] = None


_FINAL_WORDS = {
    SessionState.COMPLETED: "Completed {at}/{total} {unit}s.",
    SessionState.EARLY: "Completed at {unit} {at}/{total}: the validation metric of run.early_stop stopped improving.",
    SessionState.STOPPED_BUDGET: "Stopped at {unit} {at}/{total} to stay within the session budget. "
                                 "Run the same command in the next session to continue.",
    SessionState.STOPPED_SIGNAL: "Stopped at {unit} {at}/{total} on {signal}. Run the same command to continue.",
    SessionState.STOPPED_REQUEST: "Stopped at {unit} {at}/{total} on request (atheria stop). "
                                  "Run the same command to continue.",
}


def final_words(state: str, at: int, total: int, unit: str = "episode", signal: Optional[str] = None) -> str:
    """The closing line of a session that ended in `state` at `at` of `total` units."""
    words = _FINAL_WORDS.get(SessionState(state), "Stopped at {unit} {at}/{total}.")
    return words.format(unit=unit, at=at, total=total, signal=signal)
