"""Pictures of the whole run (every session, not just this one), drawn with matplotlib's Agg canvas and no pyplot, so
no global backend is touched: live_loss.png, the loss so far, and training_summary.png, four panels over the run."""
from __future__ import annotations

import io
import math
from typing import Any, Optional, Sequence

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from atheria.observe.baselines import Baselines
from atheria.observe.history import LOSS, SMOOTH
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


def _loss_panel(ax: Axes, rows: Sequence[Row], resumes: Sequence[float] = (),
                baselines: Optional[Baselines] = None) -> None:
    """Raw loss thin and faint, smoothed loss on top, dotted lines where a session resumed; with baselines, the
    held-out loss as points and each trivial answer's held-out loss as a dashed line."""
    ax.set_title("loss" if baselines is None else "loss, and held-out loss beside trivial baselines")
    episodes, loss = series(rows, LOSS)
    if not episodes:
        _empty(ax, "no episodes yet")
        return
    ax.plot(episodes, loss, lw=0.8, alpha=0.4, label="loss")
    ax.plot(*series(rows, SMOOTH), lw=1.6, label="smoothed")
    if baselines is not None:
        held = series(rows, baselines.metric)
        if held[0]:
            ax.plot(*held, marker="o", ms=4, lw=1.0, color="black", label=f"{baselines.metric} (held out)")
        for (label, value), colour in zip(baselines.scores.items(), ("tab:red", "tab:purple", "tab:brown")):
            ax.axhline(value, ls="--", lw=1.0, color=colour, label=f"{label}: {value:.4g}")
    for episode in resumes:
        ax.axvline(episode, ls=":", color="grey", lw=0.8)
    ax.set_xlabel("episode")
    ax.legend(loc="upper right", fontsize="small")


def _key_metric_panel(ax: Axes, rows: Sequence[Row], key_metric: tuple[str, str]) -> None:
    """The family's key metric (logged name, title) when logged, else a note."""
    key, title = key_metric
    episodes, values = series(rows, key)
    if not episodes:
        ax.set_title("key metric")
        _empty(ax, f"no {title} logged")
        return
    ax.set_title(title)
    ax.plot(episodes, values, lw=1.0, marker="." if len(values) < 50 else None)
    ax.set_xlabel("episode")


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


def summary_figure(rows: Sequence[Row], events: Sequence[dict[str, Any]], name: str,
                   key_metric: tuple[str, str], baselines: Optional[Baselines] = None) -> Figure:
    """Four panels over the whole run: loss (with the held-out loss and the trivial baselines, when measured), the
    key metric (the family's: logged name, title), the checkpoint timeline, the loss distribution."""
    fig = Figure(figsize=(12, 8), layout="constrained")
    FigureCanvasAgg(fig)
    loss_ax, key_ax, timeline_ax, dist_ax = fig.subplots(2, 2).flat
    _loss_panel(loss_ax, rows, [e["episode"] for e in events if e.get("event") == "resume"], baselines)
    _key_metric_panel(key_ax, rows, key_metric)
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
