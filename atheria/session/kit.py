"""One session's machinery, assembled the same way for every task (the Lightning callbacks, the RL scheduler's loop):
the budget clock from the platform's session start, the mirror (on global rank zero only), the shelf, the status and
the guard that publishes it. DDP ranks are told apart here, in one place."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal, Optional

from atheria.session.clock import BudgetClock, session_start
from atheria.session.guard import SessionGuard
from atheria.session.shelf import Shelf
from atheria.session.status import STATUS_NAME, Status
from atheria.storage.layout import Layout
from atheria.storage.mirror import Mirror

# The variables DDP launchers set, in the order Lightning's rank_zero_only reads them.
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


@dataclass(frozen=True)
class SessionSettings:
    """What a session is built from, typed; each task makes it once from its validated config (atheria.tasks)."""

    name: str  # the experiment's name
    max_hours: Optional[float]  # run.max_hours: the session budget, None for unlimited
    stop_at: float  # run.stop_at: the share of the budget after which the session stops itself
    session_start: Optional[float]  # run.session_start: epoch seconds, None to take the platform's session clock
    session_clock: Literal["runtime", "process"]  # platform.session_clock
    final_sync_timeout: float  # run.final_sync_timeout: seconds the final mirror may take
    sweep: Optional[str] = None  # the sweep this session's job belongs to


@dataclass
class Kit:
    """What one session's loop works with: one clock, one mirror (None without a remote or off rank zero), the shelf
    that keeps and mirrors checkpoints, and the guard that decides the end and writes status.json."""

    clock: BudgetClock
    mirror: Optional[Mirror]
    shelf: Shelf
    guard: SessionGuard


def launcher_rank() -> int:
    """This process's global rank as the DDP launchers set it (0 without DDP), read as Lightning's rank_zero_only
    reads it, without importing Lightning."""
    for key in RANK_VARIABLES:
        if key in os.environ:
            return int(os.environ[key])
    return 0


def build_clock(settings: SessionSettings) -> BudgetClock:
    """The session's budget clock: max_hours and stop_at, counted from session_start or else the start the
    platform's session clock names."""
    return BudgetClock(settings.max_hours, settings.stop_at, session_start(settings.session_clock,
                                                                          settings.session_start))


def build_kit(settings: SessionSettings, local: Layout, remote: Optional[Layout], total: int) -> Kit:
    """Clock, mirror (rank zero, with a remote), shelf and guard of one session, which ends at `total` of its units;
    status.json goes to the mirror whenever the guard rewrites it."""
    clock = build_clock(settings)
    mirror = Mirror(local.root, remote.root) if remote and launcher_rank() == 0 else None
    shelf = Shelf(local, clock, mirror, settings.final_sync_timeout)
    status_rel = local.rel("logs", STATUS_NAME)
    status = Status(settings.name, total, budget_hours=settings.max_hours, sweep=settings.sweep)
    guard = SessionGuard(clock, status, local.logs,
                         publish=(lambda: mirror.submit([status_rel])) if mirror else (lambda: None),
                         remote_logs_dir=remote.logs if remote else None)
    return Kit(clock, mirror, shelf, guard)
