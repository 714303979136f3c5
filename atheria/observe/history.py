"""metrics.csv, the run's per-episode metrics across every session: read back, and trimmed to the checkpoint a run
resumes from."""
from __future__ import annotations

import csv
import io
import os
from typing import Any, Mapping, Optional, Sequence

from atheria.storage.atomic import write_bytes_atomic

METRICS_NAME = "metrics.csv"
TRACKED = ("train/", "val/", "qca/")  # qca/: the gain over the trivial laws, beside val/
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
    they ran before a kill, were never saved, and are about to run again, so every episode keeps one row (-1: every
    row of an episode, 0's before-training figures too, for a run starting at episode 1 again). Rows that name no
    episode stay. Returns how many rows went."""
    path = os.path.join(logs_dir, METRICS_NAME)
    if not os.path.isfile(path):
        return 0
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    kept = [row for row in rows if (found := _episode_of(row)) is None or found <= episode]
    if len(kept) < len(rows):
        write_csv_atomic(path, reader.fieldnames or [], kept)
    return len(rows) - len(kept)
