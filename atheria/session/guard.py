"""The session's end, framework-neutral: stop before the budget ends, on SIGTERM/SIGINT, on `atheria stop` or when the
run is complete, and keep status.json and the event timeline current. SessionCallback adapts it to Lightning; the RL
scheduler's loop (atheria/tasks/rl_scheduler.py) to stable-baselines3."""
from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any, Callable, Optional

from atheria.session.clock import BudgetClock
from atheria.session.events import EventLog
from atheria.session.outcome import SessionState
from atheria.session.status import Status, utc_iso, write_status
from atheria.session.stop_request import StopRequests

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SessionGuard:
    """Decides when a session stops and why (`stop_reason`: a status.json state), and records it. `primary` is False
    on the processes that must neither write nor announce (DDP's other ranks)."""

    def __init__(self, clock: BudgetClock, status: Status, logs_dir: str, status_every_s: float = 30.0,
                 publish: Callable[[], None] = lambda: None, say: Callable[[str], None] = print,
                 remote_logs_dir: Optional[str] = None) -> None:
        self.clock, self.status, self.logs_dir = clock, status, logs_dir
        self.events = EventLog(logs_dir)
        self.requests = StopRequests([logs_dir, *([remote_logs_dir] if remote_logs_dir else [])], say=say)
        self.status_every_s, self.publish, self.say = status_every_s, publish, say
        self.primary = True
        self.stop_reason: Optional[SessionState] = None
        self.signal_name: Optional[str] = None
        self._session_t0 = 0.0
        self._session_step0 = 0
        self._last_status = 0.0
        self._warned = False
        self._previous_handlers: dict[int, Any] = {}

    # signals -------------------------------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.signal_name is not None:
            self.say("Second interrupt: exiting now. The last saved checkpoint is intact; rerun the same command.")
            os._exit(130)
        self.signal_name = signal.Signals(signum).name
        self.say(f"{self.signal_name} received: finishing this episode, then saving and mirroring "
                 "(Ctrl+C again to exit at once).")

    def begin(self, step: int) -> None:
        """Start of the training loop: take over SIGTERM/SIGINT (after the framework installed its own handlers, which
        would abort without saving), watch for stop requests, record the start or resume, announce the budget."""
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous_handlers[sig] = signal.signal(sig, self._on_signal)
        self.requests.start()
        self._session_t0, self._session_step0 = time.monotonic(), step
        self.event("resume" if step else "start", step,
                   budget_hours=self.clock.budget_s / 3600 if self.clock.budget_s else None)
        budget = self.clock.budget_s
        if budget and self.primary:
            self.say(f"Session budget {budget / 3600:g} h, {self.clock.fraction_used():.0%} used at start; "
                     f"stops at {self.clock.stop_at:.0%} with time kept for the final save and mirror.")

    def close(self) -> None:
        """Give the signals back and stop watching for requests (at the end of the loop, however it ended)."""
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        self._previous_handlers.clear()
        self.requests.close()

    def event(self, kind: str, step: int, **detail: Any) -> None:
        """Add an event to the run's timeline (primary process only)."""
        if self.primary:
            self.events.add(kind, step, **detail)

    # decisions -----------------------------------------------------------------------------------------------
    def reason(self, step: int, total: Optional[int]) -> Optional[SessionState]:
        """Why the session should stop now (a status state), or None: complete (unless `total` is None: the loop ends
        by itself), signalled, asked, or out of budget."""
        if total is not None and step >= total:
            return SessionState.COMPLETED
        if self.signal_name is not None:
            return SessionState.STOPPED_SIGNAL
        if self.requests.request is not None:
            self.say(f"Stop requested by {self.requests.request.get('by')} (atheria stop): stopping at episode "
                     f"{step}, saving and mirroring.")
            return SessionState.STOPPED_REQUEST
        if self.clock.should_stop():
            self.say(f"Stopping at episode {step}: the next episode and the final save would pass "
                     f"{self.clock.stop_at:.0%} of the {(self.clock.budget_s or 0) / 3600:g} h budget "
                     f"({self.clock.fraction_used():.0%} used).")
            return SessionState.STOPPED_BUDGET
        if self.clock.fraction_used() >= 0.9 and not self._warned:
            self._warned = True
            self.say(f"Warning: 90% of the session budget used at episode {step}.")
        return None

    def end(self, step: int, state: SessionState, **detail: Any) -> None:
        """Record how the session ended (a status state) in the timeline; a forced write_status publishes it."""
        self.status.state = state
        self.event("stop", step, reason=state, **detail)

    # status --------------------------------------------------------------------------------------------------
    def write_status(self, step: int, loss_smooth: Optional[float] = None, last_checkpoint: str = "",
                     force: bool = False) -> None:
        """Rewrite status.json (at most every `status_every_s` unless forced) and hand it to `publish`."""
        now = time.monotonic()
        if not self.primary or (not force and now - self._last_status < self.status_every_s):
            return
        self._last_status = now
        st = self.status
        done = step - self._session_step0
        minutes = (now - self._session_t0) / 60
        st.episode = step
        st.episodes_per_min = done / minutes if done and minutes > 0 else None
        st.eta_s = (st.total - st.episode) / st.episodes_per_min * 60 if st.episodes_per_min else None
        st.loss_smooth = loss_smooth
        st.budget_used = self.clock.fraction_used() if self.clock.budget_s else None
        st.cadence_s = self.status_every_s
        if last_checkpoint and os.path.isfile(last_checkpoint):
            st.last_checkpoint, st.last_checkpoint_at = last_checkpoint, utc_iso(os.path.getmtime(last_checkpoint))
        write_status(self.logs_dir, st)
        self.publish()
