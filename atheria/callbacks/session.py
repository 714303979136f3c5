"""The session: stop before the budget ends or on a signal, and keep status.json current. A thin Lightning adapter
over BudgetClock and the status file."""
from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any, Callable, Optional

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from atheria.callbacks.budget_clock import BudgetClock
from atheria.callbacks.events import EventLog
from atheria.callbacks.status_file import Status, utc_iso, write_status
from atheria.callbacks.stop_request import StopRequests

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def hms(seconds: Optional[float]) -> str:
    """Seconds as H:MM:SS ('-' when unknown)."""
    if seconds is None:
        return "-"
    s = int(max(0, seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class SessionCallback(Callback):
    """Ends the session cleanly: before the budget runs out, on SIGTERM/SIGINT, on `atheria stop` (polled in the
    local and remote logs dirs), or when the run is complete."""

    def __init__(self, clock: BudgetClock, status: Status, logs_dir: str, status_every_s: float = 30.0,
                 publish: Callable[[], None] = lambda: None, say: Callable[[str], None] = print,
                 remote_logs_dir: Optional[str] = None) -> None:
        self.clock, self.status, self.logs_dir = clock, status, logs_dir
        self.events = EventLog(logs_dir)
        self.requests = StopRequests([logs_dir, *([remote_logs_dir] if remote_logs_dir else [])], say=say)
        self.status_every_s, self.publish, self.say = status_every_s, publish, say
        self.stop_reason: Optional[str] = None
        self.signal_name: Optional[str] = None
        self._episode_t0 = 0.0
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

    def _install_signals(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous_handlers[sig] = signal.signal(sig, self._on_signal)

    def _restore_signals(self) -> None:
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        self._previous_handlers.clear()

    # hooks ---------------------------------------------------------------------------------------------------
    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        # Installed here, after Lightning registers its own SIGTERM handler, which would abort without saving.
        self._install_signals()
        self.requests.start()
        self._session_t0, self._session_step0 = time.monotonic(), trainer.global_step
        self._event(trainer, "resume" if trainer.global_step else "start", trainer.global_step,
                        budget_hours=self.clock.budget_s / 3600 if self.clock.budget_s else None)
        budget = self.clock.budget_s
        if budget:
            self.say(f"Session budget {budget / 3600:g} h, {self.clock.fraction_used():.0%} used at start; "
                     f"stops at {self.clock.stop_at:.0%} with time kept for the final save and mirror.")
        self._decide(trainer)
        self._write_status(trainer, force=True)

    def on_train_batch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", batch: Any,
                             batch_idx: int) -> None:
        self._episode_t0 = time.monotonic()

    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.clock.note_episode(time.monotonic() - self._episode_t0)
        self._decide(trainer)
        self._write_status(trainer, force=self.stop_reason is not None)

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._decide(trainer)
        self.status.state = self.stop_reason or "completed"  # ended on its own: early stopping or max_epochs
        self._event(trainer, "stop", trainer.global_step, reason=self.status.state)
        self._write_status(trainer, force=True)

    def on_exception(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", exception: BaseException) -> None:
        self.status.state = "failed"
        self._event(trainer, "stop", trainer.global_step, reason="failed", error=type(exception).__name__)
        self._write_status(trainer, force=True)
        self._restore_signals()
        self.requests.close()

    def teardown(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", stage: str) -> None:
        self._restore_signals()
        self.requests.close()

    def _event(self, trainer: "pl.Trainer", kind: str, episode: int, **detail: Any) -> None:
        if trainer.is_global_zero:
            self.events.add(kind, episode, **detail)

    # decisions -----------------------------------------------------------------------------------------------
    def _decide(self, trainer: "pl.Trainer") -> None:
        """Set the stop reason (and trainer.should_stop) when the run is complete, signalled, asked to stop or out
        of budget; under DDP rank zero decides for all ranks, so they stop together."""
        if self.stop_reason is not None:
            return
        reason = trainer.strategy.broadcast(self._reason(trainer), src=0)
        if reason is not None:
            self.stop_reason = reason
            trainer.should_stop = True

    def _reason(self, trainer: "pl.Trainer") -> Optional[str]:
        if trainer.global_step >= trainer.max_steps:
            return "completed"
        if self.signal_name is not None:
            return "stopped-signal"
        if self.requests.request is not None:
            self.say(f"Stop requested by {self.requests.request.get('by')} (atheria stop): stopping at episode "
                     f"{trainer.global_step}, saving and mirroring.")
            return "stopped-request"
        if self.clock.should_stop():
            self.say(f"Stopping at episode {trainer.global_step}: the next episode and the final save would pass "
                     f"{self.clock.stop_at:.0%} of the {self.clock.budget_s / 3600:g} h budget "
                     f"({self.clock.fraction_used():.0%} used).")
            return "stopped-budget"
        if self.clock.fraction_used() >= 0.9 and not self._warned:
            self._warned = True
            self.say(f"Warning: 90% of the session budget used at episode {trainer.global_step}.")
        return None

    def _write_status(self, trainer: "pl.Trainer", force: bool = False) -> None:
        now = time.monotonic()
        if not trainer.is_global_zero or (not force and now - self._last_status < self.status_every_s):
            return
        self._last_status = now
        st = self.status
        done = trainer.global_step - self._session_step0
        minutes = (now - self._session_t0) / 60
        st.episode = trainer.global_step
        st.episodes_per_min = done / minutes if done and minutes > 0 else None
        st.eta_s = (st.total - st.episode) / st.episodes_per_min * 60 if st.episodes_per_min else None
        smooth = trainer.callback_metrics.get("train/loss_smooth")
        st.loss_smooth = None if smooth is None else float(smooth)
        st.budget_used = self.clock.fraction_used() if self.clock.budget_s else None
        st.cadence_s = self.status_every_s
        last = getattr(trainer.checkpoint_callback, "last_model_path", "")
        if last and os.path.isfile(last):
            st.last_checkpoint, st.last_checkpoint_at = last, utc_iso(os.path.getmtime(last))
        write_status(self.logs_dir, st)
        self.publish()
