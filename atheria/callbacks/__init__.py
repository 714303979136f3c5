"""The progressive-training machinery as Lightning callbacks, and how typed settings assemble them (the train task
builds the settings from its config: atheria.tasks.train)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from atheria.session.kit import SessionSettings
from atheria.storage.layout import Layout


@dataclass(frozen=True)
class EarlyStop:
    """run.early_stop: stop when `monitor` has not improved by `min_delta` in `patience` validations."""

    monitor: str
    patience: int
    min_delta: float


@dataclass(frozen=True)
class CallbackSettings:
    """What the callbacks of one training session are built from, typed."""

    session: SessionSettings
    save_every: int  # run.save_every: episodes between local checkpoints
    sync_every: int  # run.sync_every: episodes between mirrors to the remote (0: only at the end)
    keep_best: int  # run.keep_best: best checkpoints kept beside last.ckpt
    monitor_every: int  # run.monitor_every: episodes between resource reports (0: off)
    plot_every: int  # run.plot_every: episodes between live plot refreshes (0: only at the end)
    media_every: int  # run.media_every: episodes between rollout pictures (0: only at the end)
    early_stop: Optional[EarlyStop]
    evaluate_every: int  # episodes between the module's held-out evaluations (0: none), each at a save; when set,
    # val/loss ranks the checkpoints saved at those episodes
    validate_every: int  # episodes between Lightning's validations (0: none); when set, val/loss ranks the
    # checkpoints saved at those episodes, each by its own validation
    key_metric: tuple[str, str]  # the family's logged metric that says how training goes, and its plot title
    config: dict[str, Any]  # the composed config, secrets masked, for the report
    launch: str  # the command that continues this run, for the report


@dataclass
class Machinery:
    """The callbacks of one session, the Trainer plugins they need (the checkpoint IO writing on their queue), and
    handles the runner needs after fit (how it ended, the mirror)."""

    callbacks: list[Any]
    plugins: list[Any]
    session: Any
    checkpoints: Any
    mirror: Optional[Any]


def build_callbacks(settings: CallbackSettings, local: Layout, remote: Optional[Layout], total: int) -> Machinery:
    """Budget, signals and stop requests, early stopping, two-tier checkpoints (ranked by val/loss when the family
    evaluates on held-out data or Lightning validates it, else by train/loss_smooth), status, progress, the
    end-of-run export, and the history, resource monitor, plots and report, wired to one session kit (clock, mirror,
    shelf, guard), in the order their end hooks must run: the held-out evaluation in flight before the plots, the
    plots before the report that shows them, all before TieredCheckpoint's final ranking and mirror."""
    from atheria.callbacks.evaluation import HeldOutEvaluation
    from atheria.callbacks.export import ExportCallback
    from atheria.callbacks.history import EpisodeHistory
    from atheria.callbacks.media import RolloutMedia
    from atheria.callbacks.monitor import ResourceMonitor
    from atheria.callbacks.plots import TrainingPlots
    from atheria.callbacks.progress import EpisodeProgressBar
    from atheria.callbacks.report import TrainingReport
    from atheria.callbacks.session import SessionCallback
    from atheria.callbacks.tiered import AtomicCheckpointIO, TieredCheckpoint
    from atheria.session.kit import build_kit
    from atheria.session.outcome import SessionState

    s = settings
    kit = build_kit(s.session, local, remote, total)
    history = EpisodeHistory(local.logs)
    evaluation = HeldOutEvaluation(s.evaluate_every, s.save_every, history) if s.evaluate_every else None
    checkpoints = TieredCheckpoint(kit.shelf, s.save_every, s.sync_every, s.keep_best,
                                   monitor="val/loss" if evaluation or s.validate_every else "train/loss_smooth",
                                   evaluation=evaluation, validate_every=s.validate_every,
                                   history=history)
    session = SessionCallback(kit.guard)
    early = []
    if s.early_stop:
        from lightning.pytorch.callbacks import EarlyStopping

        early = [EarlyStopping(monitor=s.early_stop.monitor, patience=s.early_stop.patience,
                               min_delta=s.early_stop.min_delta, mode="min")]
    export = ExportCallback(local, lambda: session.status.state == SessionState.COMPLETED)
    monitor = [ResourceMonitor(kit.clock, s.monitor_every)] if s.monitor_every > 0 else []
    observe = [history, *monitor, TrainingPlots(history, local.logs, local.name, s.plot_every, s.key_metric),
               RolloutMedia(s.media_every, local.media),
               TrainingReport(history, local, remote, s.config, s.launch)]
    evaluating = [evaluation] if evaluation else []
    return Machinery([session, *early, export, *evaluating, *observe, checkpoints, EpisodeProgressBar()],
                     [AtomicCheckpointIO(checkpoints.writes)], session, checkpoints, kit.mirror)
