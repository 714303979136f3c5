"""How one run's status.json reads on a terminal: progress bar, pace, ETA, budget, last checkpoint, liveness."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Optional

from atheria.observe.durations import span
from atheria.session.outcome import SessionState

if TYPE_CHECKING:  # at run time only the attributes are read, so `atheria status --help` imports nothing heavy
    from atheria.session.status import Status

BAR_WIDTH = 30
# A running run is "probably dead" when its status is older than this many expected intervals plus the slack
# (the mirror can hold a status upload back behind a large checkpoint upload).
DEAD_INTERVALS, DEAD_SLACK_S = 5, 300.0


def age_s(iso: Optional[str], now: datetime) -> Optional[float]:
    """Seconds from an ISO timestamp to `now` (None when missing or unreadable)."""
    try:
        return (now - datetime.fromisoformat(iso)).total_seconds() if iso else None
    except (TypeError, ValueError):
        return None


def ago(seconds: Optional[float]) -> str:
    """'12 s ago', '3 min ago', '5.2 h ago', '2.0 d ago' ('at an unknown time' when unknown)."""
    if seconds is None:
        return "at an unknown time"
    s = max(0.0, seconds)
    if s < 120:
        return f"{s:.0f} s ago"
    if s < 7200:
        return f"{s / 60:.0f} min ago"
    return f"{s / 3600:.1f} h ago" if s < 172800 else f"{s / 86400:.1f} d ago"


def file_name(path: str) -> str:
    """The last part of a path written on any OS."""
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """An ASCII progress bar with the percentage: '[#########---------]  47%'."""
    fraction = min(1.0, max(0.0, done / total)) if total > 0 else 0.0
    filled = round(fraction * width)
    return f"[{'#' * filled}{'-' * (width - filled)}] {fraction:4.0%}"


def expected_interval_s(st: "Status") -> float:
    """How often a running run rewrites its status: its cadence, or one episode when episodes are slower."""
    cadence = st.cadence_s or 30.0
    per_episode = 60.0 / st.episodes_per_min if st.episodes_per_min else 0.0
    return max(cadence, per_episode)


def is_stale(st: "Status", now: datetime) -> bool:
    """True for a run that says it is running but has not updated its status for far longer than it should."""
    age = age_s(st.updated, now)
    return (st.state == SessionState.RUNNING and age is not None
            and age > DEAD_INTERVALS * expected_interval_s(st) + DEAD_SLACK_S)


def describe_status(st: "Status", now: Optional[datetime] = None) -> str:
    """Three or four lines about one run, for `atheria status`."""
    now = now or datetime.now(timezone.utc)
    loss = "-" if st.loss_smooth is None else f"{st.loss_smooth:.4g}"
    pace = "-" if st.episodes_per_min is None else f"{st.episodes_per_min:.3g}"
    budget = "no session budget" if not st.budget_hours else (
        f"budget {st.budget_used:.0%} of {st.budget_hours:g} h" if st.budget_used is not None
        else f"budget {st.budget_hours:g} h")
    eta = f"ETA {span(st.eta_s)}" if st.state == SessionState.RUNNING else "ETA -"
    ckpt = "no checkpoint yet" if not st.last_checkpoint else (
        f"last checkpoint {file_name(st.last_checkpoint)}, {ago(age_s(st.last_checkpoint_at, now))}")
    lines = [
        f"{st.name}  {st.state}",
        f"  {bar(st.episode, st.total)}  episode {st.episode}/{st.total}",
        f"  loss {loss} (smoothed) | {pace} episodes/min | {eta} | {budget}",
        f"  {ckpt} | updated {ago(age_s(st.updated, now))} by {st.host} (pid {st.pid})",
    ]
    if is_stale(st, now):
        lines.append(f"  ! no update for {span(age_s(st.updated, now))} (expected every "
                     f"{expected_interval_s(st):.0f} s): probably dead. Run the training command again to resume.")
    return "\n".join(lines)
