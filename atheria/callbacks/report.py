"""The end-of-session report: training_log.json and {name}_REPORT.md in the logs dir, written after every completed,
budget-stopped, signalled or requested stop and before the final mirror, which carries both to the remote."""
from __future__ import annotations

import os
from typing import Any, Callable, Optional

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from atheria.callbacks.history import EpisodeHistory
from atheria.loggers import log_summary
from atheria.observe.baselines import Baselines
from atheria.observe.report import experiment_files, report_markdown, report_name
from atheria.observe.training_log import LOG_NAME, dumps, training_log
from atheria.session.events import read_events
from atheria.session.shelf import BEST_FINAL
from atheria.session.status import read_status
from atheria.storage.atomic import write_bytes_atomic
from atheria.storage.layout import Layout
from atheria.storage.manifest import read_manifest


class TrainingReport(Callback):
    """Writes training_log.json and {name}_REPORT.md at the end of every session (before the final mirror)."""

    def __init__(self, history: EpisodeHistory, local: Layout, remote: Optional[Layout], config: dict[str, Any],
                 command: str, say: Callable[[str], None] = print) -> None:
        self.history, self.local, self.remote, self.config, self.command, self.say = (
            history, local, remote, config, command, say)

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        try:
            log = self.write(_best(trainer.checkpoint_callback), getattr(pl_module, "baselines", None))
            log_summary(trainer.loggers, key_figures(log))
        except Exception as exc:  # a report is worth less than the final save and mirror that follow it
            self.say(f"Warning: could not write the training report ({type(exc).__name__}: {exc}).")

    def write(self, best: Optional[dict[str, Any]], baselines: Optional[Baselines] = None) -> dict[str, Any]:
        """Build the log from the history, timeline, status, manifest and the module's trivial baselines (when it
        measured them); write the JSON and the report."""
        logs, name = self.local.logs, self.local.name
        log = training_log(name, self.config, self.command, read_status(logs), self.history.rows(),
                           read_events(logs), read_manifest(self.local.checkpoints), best, baselines)
        also = [self.local.rel("logs", LOG_NAME), self.local.rel("logs", report_name(name))]
        if best:
            also.append(self.local.rel("checkpoints", BEST_FINAL))
        write_bytes_atomic(os.path.join(logs, LOG_NAME), dumps(log))
        text = report_markdown(log, self.local, self.remote, experiment_files(self.local, also))
        write_bytes_atomic(os.path.join(logs, report_name(name)), text.encode())
        self.say(f"Report: {os.path.join(logs, report_name(name))}")
        return log


def key_figures(log: dict[str, Any]) -> dict[str, Any]:
    """The report's figures a dashboard's run summary shows: how the session ended, the episodes, the best
    checkpoint's score and, with held-out evaluations, the best held-out loss and its gain over the trivial laws."""
    outcome, best, baselines = log.get("outcome") or {}, log["checkpoints"]["best"], log.get("baselines") or {}
    figures = {"state": outcome.get("state"), "episode": log["episodes"]["done"],
               "total_episodes": log["episodes"]["total"], "held_out_best": baselines.get("model_best"),
               "gain_over_trivial_best": baselines.get("model_best_gain")}
    if best:
        figures |= {"best_checkpoint": best["file"], f"best_checkpoint/{best['monitor']}": best["score"]}
    return {k: v for k, v in figures.items() if v is not None}


def _best(checkpoint: Any) -> Optional[dict[str, Any]]:
    """The best checkpoint a ModelCheckpoint knows of (across sessions: its state is restored on resume)."""
    path, score = getattr(checkpoint, "best_model_path", ""), getattr(checkpoint, "best_model_score", None)
    if not path or score is None:
        return None
    return {"file": os.path.basename(path), "monitor": checkpoint.monitor, "score": float(score)}
