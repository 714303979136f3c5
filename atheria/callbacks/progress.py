"""A Rich progress bar counted in episodes of the whole run (not batches of this session), with ETA."""
from __future__ import annotations

from typing import Any, Union

import lightning.pytorch as pl
from lightning.pytorch.callbacks import RichProgressBar
from rich.progress import TimeRemainingColumn


class EpisodeProgressBar(RichProgressBar):
    """Lightning's Rich bar shows batches per epoch; a run here is one endless epoch of episodes."""

    @property
    def total_train_batches(self) -> Union[int, float]:
        return self.trainer.max_steps

    def _get_train_description(self, current_epoch: int) -> str:
        return "Episodes"

    def on_train_epoch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        super().on_train_epoch_start(trainer, pl_module)
        if self.progress is not None and self.train_progress_bar_id is not None:
            self.progress.reset(self.train_progress_bar_id, total=trainer.max_steps, completed=trainer.global_step)

    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        self._update(self.train_progress_bar_id, trainer.global_step)

    def configure_columns(self, trainer: "pl.Trainer") -> list:
        return [*super().configure_columns(trainer)[:3], TimeRemainingColumn(elapsed_when_finished=True)]
