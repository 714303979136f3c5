"""How a config assembles what a user watches from afar: the resource monitor, the plots and the end-of-session
report, all sharing one in-memory history of the run's metrics."""
from __future__ import annotations

from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from atheria.session.clock import BudgetClock
from atheria.storage.layout import Layout


def observability(cfg: DictConfig, local: Layout, remote: Optional[Layout], clock: BudgetClock,
                  key_metric: tuple[str, str]) -> list[Any]:
    """History, monitor (unless run.monitor_every is 0), plots (with the family's `key_metric`: logged name, title)
    and report, in the order their end hooks must run: the plots before the report that shows them, all before
    TieredCheckpoint's final mirror."""
    from atheria.callbacks.history import EpisodeHistory
    from atheria.callbacks.monitor import ResourceMonitor
    from atheria.callbacks.plots import TrainingPlots
    from atheria.callbacks.report import TrainingReport
    from atheria.config.secrets import redacted
    from atheria.observe.report import launch_command

    run = cfg.run
    history = EpisodeHistory(local.logs)
    monitor = [ResourceMonitor(clock, run.monitor_every)] if run.monitor_every > 0 else []
    config = OmegaConf.to_container(redacted(cfg))
    return [history, *monitor, TrainingPlots(history, local.logs, local.name, run.plot_every, key_metric),
            TrainingReport(history, local, remote, config, launch_command(cfg))]
