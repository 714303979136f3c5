"""The run's per-episode metrics across every session, for plots and the report: metrics.csv read back at the start
of a session, plus this session's episodes collected as they happen (the CSV logger flushes only every 100 steps
and after the session's last hooks have run)."""
from __future__ import annotations

import csv
import io
import os
from typing import Any, Mapping, Optional, Sequence

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from atheria.storage.atomic import write_bytes_atomic

METRICS_NAME = "metrics.csv"
TRACKED = ("train/", "val/")
LOSS, SMOOTH = "train/loss", "train/loss_smooth"  # what every model family logs


def _number(text: Optional[str]) -> Optional[float]:
    """A CSV cell as a float; None when empty or cut off by a killed write."""
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _episode_of(row: Mapping[str, Optional[str]]) -> Optional[int]:
    """The episode a metrics.csv row belongs to: its `episode` column, else `step` + 1; None when it names neither."""
    episode, step = _number(row.get("episode")), _number(row.get("step"))
    if episode is not None:
        return int(episode)
    return int(step) + 1 if step is not None else None


def read_history(logs_dir: str) -> dict[int, dict[str, float]]:
    """metrics.csv as {episode: {metric: value}}: train/ and val/ metrics only, the last row per episode winning
    (a file from before trim_history may hold an episode re-run after a kill twice)."""
    path = os.path.join(logs_dir, METRICS_NAME)
    history: dict[int, dict[str, float]] = {}
    if not os.path.isfile(path):
        return history
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            episode = _episode_of(row)
            values = {k: v for k, v in ((k, _number(t)) for k, t in row.items() if k and k.startswith(TRACKED))
                      if v is not None}
            if episode is not None and values:
                history.setdefault(episode, {}).update(values)
    return history


def write_csv_atomic(path: str, fieldnames: Sequence[str], rows: list[dict[str, Any]]) -> None:
    """Replace a CSV file whole (header, then rows), so that a kill leaves either the old file or the new one.
    Cells a cut-off row holds beyond the header are dropped."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fieldnames, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(path, text.getvalue().encode())


def trim_history(logs_dir: str, episode: int) -> int:
    """Remove from metrics.csv, atomically, the rows of episodes after `episode`, the checkpoint a run resumes from:
    they ran before a kill, were never saved, and are about to run again, so every episode keeps one row. Rows that
    name no episode stay. Returns how many rows went."""
    path = os.path.join(logs_dir, METRICS_NAME)
    if not os.path.isfile(path):
        return 0
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    kept = [row for row in rows if (_episode_of(row) or 0) <= episode]
    if len(kept) < len(rows):
        write_csv_atomic(path, reader.fieldnames or [], kept)
    return len(rows) - len(kept)


class EpisodeHistory(Callback):
    """Keeps every episode's train/ and val/ metrics of the whole run in memory, seeded from metrics.csv."""

    def __init__(self, logs_dir: str) -> None:
        self.logs_dir = logs_dir
        self.episodes: dict[int, dict[str, float]] = {}

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        # Episodes past the resumed checkpoint (run before a kill, never saved) are about to be run again.
        self.episodes = {e: row for e, row in read_history(self.logs_dir).items() if e <= trainer.global_step}

    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.record(trainer.global_step, trainer.callback_metrics, "train/")

    def on_validation_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not trainer.sanity_checking:
            self.record(trainer.global_step, trainer.callback_metrics, "val/")

    def record(self, episode: int, metrics: Mapping[str, Any], prefix: str) -> None:
        """Note the metrics under `prefix` (Lightning logs scalars only) as those of `episode`; later values win."""
        values = {k: float(v) for k, v in metrics.items() if k.startswith(prefix)}
        if values:
            self.episodes.setdefault(episode, {}).update(values)

    def rows(self) -> list[dict[str, float]]:
        """Every episode so far, oldest first, as {'episode': n, metric: value, ...}."""
        return [{"episode": float(e), **row} for e, row in sorted(self.episodes.items())]
