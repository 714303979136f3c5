"""The training plots as a callback: live_loss.png refreshed every few episodes, training_summary.png at each
session's end, drawn by atheria.observe.figures, and each handed to the loggers that show pictures (W&B,
TensorBoard) when it is written."""
from __future__ import annotations

import os
import threading
from typing import Any, Callable, Optional, Sequence

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from atheria.callbacks.history import EpisodeHistory
from atheria.loggers import hand_over
from atheria.observe.baselines import Baselines
from atheria.observe.figures import LIVE_NAME, SUMMARY_NAME, Row, live_figure, save_png, summary_figure
from atheria.session.events import read_events


class TrainingPlots(Callback):
    """Refreshes live_loss.png every `every` episodes (0: only at the end) and draws both pictures at the end. The
    live plot is drawn in a background thread, on the rows as they were at its episode, so training never waits for
    matplotlib (a draw costs about 0.1 s); a refresh due while the previous one is still drawing is skipped.
    `key_metric` is the family's (logged name, title), for the summary's second panel. Each picture goes to the
    loggers from the training thread (as `plots/live_loss`, `plots/training_summary`, at the episode of its last
    row): a live plot drawn in the background waits for the next episode's hook."""

    def __init__(self, history: EpisodeHistory, logs_dir: str, name: str, every: int, key_metric: tuple[str, str],
                 say: Callable[[str], None] = print) -> None:
        self.history, self.logs_dir, self.name, self.every, self.say = history, logs_dir, name, every, say
        self.key_metric = key_metric
        self._drawing: Optional[threading.Thread] = None
        self._loggers: list[Any] = []
        self._drawn: list[tuple[str, str, int]] = []  # (key, path, episode) written, not yet handed to the loggers

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._loggers = list(trainer.loggers) if trainer.is_global_zero else []

    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._hand_over()
        if self.every > 0 and trainer.global_step % self.every == 0 and not self.drawing():
            self.history.deliver(trainer)  # the rows up to this episode, not up to the last bunch delivered
            self._drawing = threading.Thread(target=self.draw, args=(False, self.history.rows()), daemon=True,
                                             name="atheria-live-plot")
            self._drawing.start()

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self._drawing is not None:
            self._drawing.join()
        self._hand_over()  # before the final draw replaces the file
        self.draw(summary=True, baselines=getattr(pl_module, "baselines", None))
        self._hand_over()

    def _hand_over(self) -> None:
        hand_over(self._loggers, self._drawn, self.say)

    def drawing(self) -> bool:
        """Whether a live plot is being drawn in the background now."""
        return self._drawing is not None and self._drawing.is_alive()

    def draw(self, summary: bool, rows: Optional[Sequence[Row]] = None, baselines: Optional[Baselines] = None) -> None:
        """Draw the live plot (and the summary, with the module's trivial baselines when it measured them) of `rows`
        (default: the history now); a picture that fails is reported, never allowed to end the run."""
        rows = self.history.rows() if rows is None else rows
        episode = int(rows[-1]["episode"]) if rows else 0
        try:
            live = os.path.join(self.logs_dir, LIVE_NAME)
            save_png(live_figure(rows, self.name), live)
            drawn = [("plots/live_loss", live, episode)]
            if summary:
                fig = summary_figure(rows, read_events(self.logs_dir), self.name, self.key_metric, baselines)
                save_png(fig, os.path.join(self.logs_dir, SUMMARY_NAME))
                drawn.append(("plots/training_summary", os.path.join(self.logs_dir, SUMMARY_NAME), episode))
            if episode > 0:
                self._drawn.extend(drawn)
        except Exception as exc:  # a plot is worth less than the run's final save and mirror that follow it
            self.say(f"Warning: could not draw the training plots ({type(exc).__name__}: {exc}); training goes on.")
