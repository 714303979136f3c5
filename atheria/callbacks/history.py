"""The run's per-episode metrics: each training step's metrics handed to the loggers, the progress bar and the
monitors, and every episode of the whole run kept in memory for plots and the report (metrics.csv read back at the
start of a session, plus this session's episodes as they happen).

A module hands a step's metrics over as `step_metrics` (name -> 0-d tensor), set in training_step, instead of
`self.log`: Lightning's costs about 0.4 ms per key per step on the training thread (it deep-copies each value's
metadata), a third of an episode at GPU episode rates. Here a step's metrics are stacked into one tensor on its
device and read back, in one device sync, at most once every `every_s` seconds, before every checkpoint (so that
metrics.csv holds the rows of every episode a checkpoint holds) and at the end."""
from __future__ import annotations

import time
from typing import Any, Mapping, Optional

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from atheria.loggers import log_rows
from atheria.observe.history import LOSS, SMOOTH, read_history

PROGRESS_BAR = (LOSS, SMOOTH)


class EpisodeHistory(Callback):
    """Collects each step's `step_metrics`, delivers them in bunches, and keeps every episode's train/ and val/
    metrics of the whole run in memory, seeded from metrics.csv."""

    def __init__(self, logs_dir: str, every_s: float = 1.0) -> None:
        self.logs_dir, self.every_s = logs_dir, every_s
        self.episodes: dict[int, dict[str, float]] = {}
        self._pending: list[tuple[int, tuple[str, ...], torch.Tensor]] = []
        self._delivered = time.monotonic()

    @override
    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        # Episodes past the resumed checkpoint (run before a kill, never saved) are about to be run again.
        self.episodes = {e: row for e, row in read_history(self.logs_dir).items() if e <= trainer.global_step}
        self._delivered = time.monotonic()

    @override
    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        metrics: Optional[Mapping[str, torch.Tensor]] = getattr(pl_module, "step_metrics", None)
        if metrics:
            values = torch.stack([v.detach().float() for v in metrics.values()])  # a copy: buffers change in place
            self._pending.append((trainer.global_step, tuple(metrics), values))
            pl_module.step_metrics = {}
        if time.monotonic() - self._delivered >= self.every_s:
            self.deliver(trainer)

    @override
    def on_validation_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not trainer.sanity_checking:
            self.record(trainer.global_step, trainer.callback_metrics, "val/")

    @override
    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self.deliver(trainer)

    @override
    def on_exception(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", exception: BaseException) -> None:
        self.deliver(trainer)

    def deliver(self, trainer: "pl.Trainer") -> None:
        """Hand the steps collected so far to the loggers (metrics.csv's rows written to its file), note them here,
        and make the newest the trainer's callback and progress-bar metrics (what monitors and the bar read)."""
        self._delivered = time.monotonic()
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        flat = iter(torch.cat([v for _, _, v in pending]).tolist())  # the one device sync
        rows = [(step, {k: next(flat) for k in keys}) for step, keys, _ in pending]
        for step, row in rows:
            self.episodes.setdefault(step, {}).update(row)
        log_rows(trainer, rows)
        newest = rows[-1][1]
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in newest.items()})  # kept until the next
        trainer.progress_bar_metrics.update({k: newest[k] for k in PROGRESS_BAR if k in newest})

    def record(self, episode: int, metrics: Mapping[str, Any], prefix: str = "") -> None:
        """Note the metrics under `prefix` (Lightning logs scalars only) as those of `episode`; later values win."""
        values = {k: float(v) for k, v in metrics.items() if k.startswith(prefix)}
        if values:
            self.episodes.setdefault(episode, {}).update(values)

    def rows(self) -> list[dict[str, float]]:
        """Every episode so far, oldest first, as {'episode': n, metric: value, ...}."""
        return [{"episode": float(e), **row} for e, row in sorted(self.episodes.items())]
