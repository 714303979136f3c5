"""Held-out evaluation at checkpoint saves, in the episode's own hooks so that the checkpoint saved at that episode
is ranked by its own figures. Lightning's validation loop runs only after every on_train_batch_end hook, so a
ModelCheckpoint ranking by a validation metric would score each checkpoint by the previous evaluation; and a value
logged with `self.log` from a hook is repeated in every later row of the epoch, so the figures go to the loggers
directly, once, at their episode."""
from __future__ import annotations

from typing import Any, Optional

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from atheria.callbacks.history import EpisodeHistory
from atheria.loggers import log_rows


class HeldOutEvaluation(Callback):
    """At the first checkpoint save (every `save_every` episodes) at or past each multiple of `every` episodes, asks
    the module to `evaluate()` itself (a dict of metric name -> float), logs the result at that episode and notes it
    in the run's history. The checkpoint callback (Lightning runs it after the others) ranks the checkpoint saved
    there by `scores(step)`."""

    def __init__(self, every: int, save_every: int, history: EpisodeHistory) -> None:
        self.every, self.save_every, self.history = every, save_every, history
        self.last, self._scores = 0, {}

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.last = trainer.global_step

    def scores(self, step: int) -> Optional[dict[str, float]]:
        """The module's figures measured at episode `step`, or None when it was not evaluated there."""
        return self._scores if step == self.last and self._scores else None

    @override
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = trainer.global_step
        if step % self.save_every or step // self.every <= self.last // self.every:
            return
        self.last, self._scores = step, pl_module.evaluate()
        self.history.record(step, self._scores)
        log_rows(trainer, [(step, self._scores)])
