"""The training plots as a callback: live_loss.png refreshed every few episodes, training_summary.png at each
session's end, drawn by atheria.observe.figures."""
from __future__ import annotations

import os
import threading
from typing import Any, Callable, Optional, Sequence

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from atheria.callbacks.history import EpisodeHistory
from atheria.observe.baselines import Baselines
from atheria.observe.figures import LIVE_NAME, SUMMARY_NAME, Row, live_figure, save_png, summary_figure
from atheria.session.events import read_events


class TrainingPlots(Callback):
    """Refreshes live_loss.png every `every` episodes (0: only at the end) and draws both pictures at the end. The
    live plot is drawn in a background thread, on the rows as they were at its episode, so training never waits for
    matplotlib (a draw costs about 0.1 s); a refresh due while the previous one is still drawing is skipped.
    `key_metric` is the family's (logged name, title), for the summary's second panel."""

    def __init__(self, history: EpisodeHistory, logs_dir: str, name: str, every: int, key_metric: tuple[str, str],
                 say: Callable[[str], None] = print) -> None:
        self.history, self.logs_dir, self.name, self.every, self.say = history, logs_dir, name, every, say
        self.key_metric = key_metric
        self._drawing: Optional[threading.Thread] = None

    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.every > 0 and trainer.global_step % self.every == 0 and not self.drawing():
            self._drawing = threading.Thread(target=self.draw, args=(False, self.history.rows()), daemon=True,
                                             name="atheria-live-plot")
            self._drawing.start()

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self._drawing is not None:
            self._drawing.join()
        self.draw(summary=True, baselines=getattr(pl_module, "baselines", None))

    def drawing(self) -> bool:
        """Whether a live plot is being drawn in the background now."""
        return self._drawing is not None and self._drawing.is_alive()

    def draw(self, summary: bool, rows: Optional[Sequence[Row]] = None, baselines: Optional[Baselines] = None) -> None:
        """Draw the live plot (and the summary, with the module's trivial baselines when it measured them) of `rows`
        (default: the history now); a picture that fails is reported, never allowed to end the run."""
        rows = self.history.rows() if rows is None else rows
        try:
            save_png(live_figure(rows, self.name), os.path.join(self.logs_dir, LIVE_NAME))
            if summary:
                fig = summary_figure(rows, read_events(self.logs_dir), self.name, self.key_metric, baselines)
                save_png(fig, os.path.join(self.logs_dir, SUMMARY_NAME))
        except Exception as exc:  # a plot is worth less than the run's final save and mirror that follow it
            self.say(f"Warning: could not draw the training plots ({type(exc).__name__}: {exc}); training goes on.")
