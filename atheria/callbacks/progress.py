"""A Rich progress bar counted in episodes of the whole run (not batches of this session), with labelled times."""
from __future__ import annotations

from typing import Any, Union

import lightning.pytorch as pl
from lightning.pytorch.callbacks import RichProgressBar
from rich.progress import ProgressColumn, Task
from rich.text import Text
from typing_extensions import override

from atheria.observe.durations import hms


class ElapsedRemainingColumn(ProgressColumn):
    """'0:01:10 elapsed · 0:03:50 left' while running, '0:05:00 elapsed' once done (Rich's times have no labels)."""

    @override
    def render(self, task: Task) -> Text:
        if task.finished:
            return Text(f"{hms(task.finished_time)} elapsed", style="progress.elapsed")
        return Text(f"{hms(task.elapsed)} elapsed · {hms(task.time_remaining)} left", style="progress.remaining")


class EpisodeProgressBar(RichProgressBar):
    """Lightning's Rich bar shows batches per epoch; a run here is one endless epoch of episodes."""

    @property
    @override
    def total_train_batches(self) -> Union[int, float]:
        return self.trainer.max_steps

    @override
    def _get_train_description(self, current_epoch: int) -> str:
        return "Episodes"

    @override
    def on_train_epoch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        super().on_train_epoch_start(trainer, pl_module)
        if self.progress is not None and self.train_progress_bar_id is not None:
            self.progress.reset(self.train_progress_bar_id, total=trainer.max_steps, completed=trainer.global_step)

    @override
    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        self._update(self.train_progress_bar_id, trainer.global_step)

    @override
    def configure_columns(self, trainer: "pl.Trainer") -> list:
        return [*super().configure_columns(trainer)[:3], ElapsedRemainingColumn()]

    @override
    def get_metrics(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> dict[str, Any]:
        """The logged progress-bar metrics, without the logger's version (TensorBoard's reads 'v_num: oard')."""
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items
