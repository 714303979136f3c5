"""The session: stop before the budget ends or on a signal, and keep status.json current. A thin Lightning adapter
over SessionGuard (budget clock, signals, stop requests, status file)."""
from __future__ import annotations

import time
from typing import Any, Optional

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from atheria.session.guard import SessionGuard
from atheria.session.outcome import SessionState
from atheria.session.status import Status


class SessionCallback(Callback):
    """Ends the session cleanly: before the budget runs out, on SIGTERM/SIGINT, on `atheria stop` (polled in the
    local and remote logs dirs), or when the run is complete."""

    def __init__(self, guard: SessionGuard) -> None:
        self.guard = guard
        self._episode_t0 = 0.0

    @property
    def status(self) -> Status:
        return self.guard.status

    @property
    def stop_reason(self) -> Optional[SessionState]:
        return self.guard.stop_reason

    @property
    def signal_name(self) -> Optional[str]:
        return self.guard.signal_name

    @override
    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        # Signals are taken here, after Lightning registers its own SIGTERM handler, which would abort without saving.
        self.guard.primary = trainer.is_global_zero
        self.guard.begin(trainer.global_step)
        self._decide(trainer)
        self._write_status(trainer, force=True)

    @override
    def on_train_batch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", batch: Any,
                             batch_idx: int) -> None:
        self._episode_t0 = time.monotonic()

    @override
    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.guard.clock.note_episode(time.monotonic() - self._episode_t0)
        self._decide(trainer)
        self._write_status(trainer, force=self.stop_reason is not None)

    @override
    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._decide(trainer)
        # ended on its own: early stopping...
        self.guard.end(trainer.global_step, self.stop_reason or SessionState.COMPLETED)
        self._write_status(trainer, force=True)

    @override
    def on_exception(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", exception: BaseException) -> None:
        self.guard.end(trainer.global_step, SessionState.FAILED, error=type(exception).__name__)
        self._write_status(trainer, force=True)
        self.guard.close()

    @override
    def teardown(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", stage: str) -> None:
        self.guard.close()

    def _decide(self, trainer: "pl.Trainer") -> None:
        """Set the stop reason (and trainer.should_stop) when the run is complete, signalled, asked to stop or out
        of budget; under DDP rank zero decides for all ranks, so they stop together."""
        if self.stop_reason is not None:
            return
        reason = trainer.strategy.broadcast(self.guard.reason(trainer.global_step, trainer.max_steps), src=0)
        if reason is not None:
            self.guard.stop_reason = reason
            trainer.should_stop = True

    def _write_status(self, trainer: "pl.Trainer", force: bool = False) -> None:
        smooth = trainer.callback_metrics.get("train/loss_smooth")
        last = getattr(trainer.checkpoint_callback, "last_model_path", "") or ""
        self.guard.write_status(trainer.global_step, None if smooth is None else float(smooth), last, force=force)
