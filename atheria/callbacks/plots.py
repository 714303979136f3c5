"""Pictures of the whole run (every session, not just this one), drawn with matplotlib's Agg canvas and no pyplot, so
no global backend is touched: live_loss.png refreshed every few episodes, training_summary.png at each session's end."""
from __future__ import annotations

import io
import math
import os
import threading
from typing import Any, Callable, Optional, Sequence

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from atheria.callbacks.history import EpisodeHistory
from atheria.families import KEY_METRICS
from atheria.observe.history import LOSS, SMOOTH
from atheria.session.events import read_events
from atheria.session.outcome import SessionState
from atheria.storage.atomic import write_bytes_atomic

LIVE_NAME, SUMMARY_NAME = "live_loss.png", "training_summary.png"
TIMELINE = ("start/resume", "save", "mirror", "stop")
STOP_COLOURS = {SessionState.COMPLETED: "tab:green", SessionState.STOPPED_BUDGET: "tab:orange",
                SessionState.STOPPED_SIGNAL: "tab:purple", SessionState.STOPPED_REQUEST: "tab:blue",
                SessionState.FAILED: "tab:red"}

Row = dict[str, float]


def series(rows: Sequence[Row], key: str) -> tuple[list[float], list[float]]:
    """Episodes and values of `key`, skipping episodes where it is missing or not finite."""
    pairs = [(r["episode"], r[key]) for r in rows if key in r and math.isfinite(r[key])]
    return [e for e, _ in pairs], [v for _, v in pairs]


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")


def _loss_panel(ax: Axes, rows: Sequence[Row], resumes: Sequence[float] = ()) -> None:
    """Raw loss thin and faint, smoothed loss on top, dotted lines where a session resumed."""
    ax.set_title("loss")
    episodes, loss = series(rows, LOSS)
    if not episodes:
        _empty(ax, "no episodes yet")
        return
    ax.plot(episodes, loss, lw=0.8, alpha=0.4, label="loss")
    ax.plot(*series(rows, SMOOTH), lw=1.6, label="smoothed")
    for episode in resumes:
        ax.axvline(episode, ls=":", color="grey", lw=0.8)
    ax.set_xlabel("episode")
    ax.legend(loc="upper right", fontsize="small")


def _key_metric_panel(ax: Axes, rows: Sequence[Row]) -> None:
    """The family's key metric (atheria.families.KEY_METRICS, the first one logged), else a note."""
    for key, label in KEY_METRICS:
        episodes, values = series(rows, key)
        if episodes:
            ax.set_title(label)
            ax.plot(episodes, values, lw=1.0, marker="." if len(values) < 50 else None)
            ax.set_xlabel("episode")
            return
    ax.set_title("key metric")
    _empty(ax, f"no {' or '.join(label for _, label in KEY_METRICS)} logged")


def _timeline_panel(ax: Axes, events: Sequence[dict[str, Any]]) -> None:
    """Starts and resumes, saves, mirrors and stops (coloured by reason) against episode."""
    ax.set_title("checkpoint timeline")
    lane = {"start": 0, "resume": 0, "save": 1, "mirror": 2, "stop": 3}
    for kind, marker in (("start", "o"), ("resume", "o"), ("save", "|"), ("mirror", "^")):
        xs = [e["episode"] for e in events if e.get("event") == kind]
        if xs:
            ax.scatter(xs, [lane[kind]] * len(xs), marker=marker, s=40, color="tab:grey" if kind == "save" else None)
    for reason, colour in STOP_COLOURS.items():
        xs = [e["episode"] for e in events if e.get("event") == "stop" and e.get("reason") == reason]
        if xs:
            ax.scatter(xs, [lane["stop"]] * len(xs), marker="s", s=40, color=colour, label=reason)
    ax.set_yticks(range(len(TIMELINE)), TIMELINE)
    ax.set_ylim(-0.5, len(TIMELINE) - 0.5)
    ax.set_xlabel("episode")
    if any(e.get("event") == "stop" for e in events):
        ax.legend(loc="lower right", fontsize="x-small")


def _distribution_panel(ax: Axes, rows: Sequence[Row]) -> None:
    """Histogram of every episode's raw loss, with its median."""
    ax.set_title("loss distribution")
    _, loss = series(rows, LOSS)
    if not loss:
        _empty(ax, "no episodes yet")
        return
    ax.hist(loss, bins=max(5, min(40, len(loss) // 5)))
    median = sorted(loss)[len(loss) // 2]
    ax.axvline(median, color="black", ls="--", lw=1, label=f"median {median:.4g}")
    ax.set_xlabel("loss")
    ax.legend(loc="upper right", fontsize="small")


def live_figure(rows: Sequence[Row], name: str) -> Figure:
    """One panel: the run's loss so far, raw and smoothed. Fixed margins: drawn during training, where the constrained
    layout's solver would cost a third of the drawing time."""
    fig = Figure(figsize=(7, 4))
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.12, top=0.86)
    _loss_panel(fig.add_subplot(), rows)
    last = int(rows[-1]["episode"]) if rows else 0
    fig.suptitle(f"{name}: episode {last}")
    return fig


def summary_figure(rows: Sequence[Row], events: Sequence[dict[str, Any]], name: str) -> Figure:
    """Four panels over the whole run: loss, the key metric, the checkpoint timeline, the loss distribution."""
    fig = Figure(figsize=(12, 8), layout="constrained")
    FigureCanvasAgg(fig)
    loss_ax, key_ax, timeline_ax, dist_ax = fig.subplots(2, 2).flat
    _loss_panel(loss_ax, rows, [e["episode"] for e in events if e.get("event") == "resume"])
    _key_metric_panel(key_ax, rows)
    _timeline_panel(timeline_ax, events)
    _distribution_panel(dist_ax, rows)
    last = int(rows[-1]["episode"]) if rows else 0
    fig.suptitle(f"{name}: training summary, {last} episodes")
    return fig


def save_png(fig: Figure, path: str) -> None:
    """Write the figure atomically (the mirror may copy it at any moment); its title and panel titles go in the PNG's
    Title and Description, so a reader of the file alone can tell what it shows."""
    panels = "; ".join(ax.get_title() for ax in fig.axes)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Title": fig.get_suptitle(), "Description": f"panels: {panels}"})
    write_bytes_atomic(path, buf.getvalue())


class TrainingPlots(Callback):
    """Refreshes live_loss.png every `every` episodes (0: only at the end) and draws both pictures at the end. The
    live plot is drawn in a background thread, on the rows as they were at its episode, so training never waits for
    matplotlib (a draw costs about 0.1 s); a refresh due while the previous one is still drawing is skipped."""

    def __init__(self, history: EpisodeHistory, logs_dir: str, name: str, every: int,
                 say: Callable[[str], None] = print) -> None:
        self.history, self.logs_dir, self.name, self.every, self.say = history, logs_dir, name, every, say
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
        self.draw(summary=True)

    def drawing(self) -> bool:
        """Whether a live plot is being drawn in the background now."""
        return self._drawing is not None and self._drawing.is_alive()

    def draw(self, summary: bool, rows: Optional[Sequence[Row]] = None) -> None:
        """Draw the live plot (and the summary) of `rows` (default: the history now); a picture that fails is
        reported, never allowed to end the run."""
        rows = self.history.rows() if rows is None else rows
        try:
            save_png(live_figure(rows, self.name), os.path.join(self.logs_dir, LIVE_NAME))
            if summary:
                fig = summary_figure(rows, read_events(self.logs_dir), self.name)
                save_png(fig, os.path.join(self.logs_dir, SUMMARY_NAME))
        except Exception as exc:  # a plot is worth less than the run's final save and mirror that follow it
            self.say(f"Warning: could not draw the training plots ({type(exc).__name__}: {exc}); training goes on.")
