"""The progressive-training machinery as Lightning callbacks, and how a config assembles them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from omegaconf import DictConfig

from atheria.storage.layout import Layout


@dataclass
class Machinery:
    """The callbacks of one session, with handles the runner needs after fit (how it ended, the mirror)."""

    callbacks: list[Any]
    session: Any
    checkpoints: Any
    mirror: Optional[Any]


def build_callbacks(cfg: DictConfig, local: Layout, remote: Optional[Layout], total: int) -> Machinery:
    """Budget, signals and stop requests, two-tier checkpoints, status, progress, the end-of-run export, and the
    resource monitor, plots and report, wired to one clock and one mirror."""
    from atheria.callbacks.export import ExportCallback
    from atheria.callbacks.observability import observability
    from atheria.callbacks.progress import EpisodeProgressBar
    from atheria.callbacks.session import SessionCallback
    from atheria.callbacks.tiered import TieredCheckpoint
    from atheria.session.clock import BudgetClock, session_start
    from atheria.session.status import Status
    from atheria.storage.mirror import Mirror
    from atheria.sweeps import sweep_id

    run = cfg.run
    clock = BudgetClock(run.max_hours, run.stop_at, session_start(cfg.platform.name, run.session_start))
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    mirror = Mirror(local.root, remote.root) if remote and rank_zero_only.rank == 0 else None
    checkpoints = TieredCheckpoint(local, run.save_every, run.sync_every, run.keep_best, clock, mirror,
                                   final_sync_timeout=run.final_sync_timeout)
    status_rel = local.rel("logs", "status.json")
    session = SessionCallback(clock, Status(cfg.name, total, budget_hours=run.max_hours, sweep=sweep_id()), local.logs,
                              publish=(lambda: mirror.submit([status_rel])) if mirror else (lambda: None),
                              remote_logs_dir=remote.logs if remote else None)
    early = []
    if run.early_stop:
        from lightning.pytorch.callbacks import EarlyStopping

        early = [EarlyStopping(monitor=run.early_stop.monitor, patience=run.early_stop.patience,
                               min_delta=run.early_stop.min_delta, mode="min")]
    export = ExportCallback(local, lambda: session.status.state == "completed")
    return Machinery([session, *early, export, *observability(cfg, local, remote, clock), checkpoints,
                      EpisodeProgressBar()], session, checkpoints, mirror)
