"""The run's per-episode metrics across every session, for plots and the report: metrics.csv read back at the start
of a session, plus this session's episodes collected as they happen (the CSV logger flushes only every 100 steps
and after the session's last hooks have run)."""
from __future__ import annotations

from typing import Any, Mapping

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from atheria.observe.history import read_history


class EpisodeHistory(Callback):
    """Keeps every episode's train/ and val/ metrics of the whole run in memory, seeded from metrics.csv."""

    def __init__(self, logs_dir: str) -> None:
        self.logs_dir = logs_dir
        self.episodes: dict[int, dict[str, float]] = {}

    @override
    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        # Episodes past the resumed checkpoint (run before a kill, never saved) are about to be run again.
        self.episodes = {e: row for e, row in read_history(self.logs_dir).items() if e <= trainer.global_step}

    @override
    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.record(trainer.global_step, trainer.callback_metrics, "train/")

    @override
    def on_validation_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not trainer.sanity_checking:
            self.record(trainer.global_step, trainer.callback_metrics, "val/")

    def record(self, episode: int, metrics: Mapping[str, Any], prefix: str = "") -> None:
        """Note the metrics under `prefix` (Lightning logs scalars only) as those of `episode`; later values win."""
        values = {k: float(v) for k, v in metrics.items() if k.startswith(prefix)}
        if values:
            self.episodes.setdefault(episode, {}).update(values)

    def rows(self) -> list[dict[str, float]]:
        """Every episode so far, oldest first, as {'episode': n, metric: value, ...}."""
        return [{"episode": float(e), **row} for e, row in sorted(self.episodes.items())]
