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


def build_callbacks(cfg: DictConfig, local: Layout, remote: Optional[Layout], total: int,
                    key_metric: tuple[str, str]) -> Machinery:
    """Budget, signals and stop requests, two-tier checkpoints, status, progress, the end-of-run export, and the
    resource monitor, plots (showing `key_metric`, the family's logged name and title) and report, wired to one
    session kit (clock, mirror, shelf, guard)."""
    from atheria.callbacks.export import ExportCallback
    from atheria.callbacks.observability import observability
    from atheria.callbacks.progress import EpisodeProgressBar
    from atheria.callbacks.session import SessionCallback
    from atheria.callbacks.tiered import TieredCheckpoint
    from atheria.session.kit import build_kit
    from atheria.session.outcome import SessionState
    from atheria.sweeps import sweep_id

    run = cfg.run
    kit = build_kit(cfg.name, run, cfg.platform.session_clock, local, remote, total, sweep_id())
    checkpoints = TieredCheckpoint(kit.shelf, run.save_every, run.sync_every, run.keep_best)
    session = SessionCallback(kit.guard)
    early = []
    if run.early_stop:
        from lightning.pytorch.callbacks import EarlyStopping

        early = [EarlyStopping(monitor=run.early_stop.monitor, patience=run.early_stop.patience,
                               min_delta=run.early_stop.min_delta, mode="min")]
    export = ExportCallback(local, lambda: session.status.state == SessionState.COMPLETED)
    return Machinery([session, *early, export, *observability(cfg, local, remote, kit.clock, key_metric), checkpoints,
                      EpisodeProgressBar()], session, checkpoints, kit.mirror)
