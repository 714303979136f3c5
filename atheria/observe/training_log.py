"""training_log.json: the whole run in one machine-readable file (config, episodes, losses, metrics, checkpoints,
sessions), rebuilt at the end of every session from the metrics history, the event timeline and status.json."""
from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any, Optional, Sequence

from atheria.observe.baselines import Baselines
from atheria.observe.history import LOSS, SMOOTH
from atheria.session.status import Status, utc_iso
from atheria.storage.manifest import Manifest

LOG_NAME = "training_log.json"


def sessions(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per session from the timeline: start, episodes covered, saves, mirrors, and how it ended
    (outcome None: the process died without recording a stop, e.g. the platform killed it)."""
    found: list[dict[str, Any]] = []
    saved: list[set[int]] = []  # episodes at which each session saved (one save writes several files)
    for event in events:
        kind, episode = event.get("event"), int(event.get("episode", 0))
        if kind in ("start", "resume"):
            found.append({"started": event.get("t"), "from_episode": episode, "to_episode": episode,
                          "budget_hours": event.get("budget_hours"), "saves": 0, "mirrors": 0, "ended": None,
                          "outcome": None})
            saved.append(set())
            continue
        if not found:
            continue
        session = found[-1]
        session["to_episode"] = max(session["to_episode"], episode)
        if kind == "save":
            saved[-1].add(episode)
            session["saves"] = len(saved[-1])
        elif kind == "mirror":
            session["mirrors"] += 1
        elif kind == "stop":
            session["ended"], session["outcome"] = event.get("t"), event.get("reason")
    return found


def _finite(node: Any) -> Any:
    """The same structure with NaN and infinities as null, so the file is strict JSON."""
    if isinstance(node, dict):
        return {k: _finite(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_finite(v) for v in node]
    if isinstance(node, float) and not math.isfinite(node):
        return None
    return node


def final_metrics(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """Each metric's last finite value over the run."""
    final: dict[str, float] = {}
    for row in rows:
        final.update({k: v for k, v in row.items() if k != "episode" and math.isfinite(v)})
    return dict(sorted(final.items()))


def _baselines(baselines: Optional[Baselines], rows: Sequence[dict[str, float]]) -> Optional[dict[str, Any]]:
    """The baselines' record, with the run's best and last held-out score and gain (None until measured)."""
    if baselines is None:
        return None
    held = [(r[baselines.metric], r.get(baselines.gain)) for r in rows
            if baselines.metric in r and math.isfinite(r[baselines.metric])]
    best = min(held, key=lambda p: p[0]) if held else (None, None)
    return {**baselines.as_dict(), "model_best": best[0], "model_best_gain": best[1],
            "model_last": held[-1][0] if held else None, "model_last_gain": held[-1][1] if held else None}


def training_log(name: str, config: dict[str, Any], command: str, status: Optional[Status],
                 rows: Sequence[dict[str, float]], events: Sequence[dict[str, Any]], manifest: Optional[Manifest],
                 best: Optional[dict[str, Any]], baselines: Optional[Baselines] = None) -> dict[str, Any]:
    """The log as a dict: everything the report says, plus every episode's losses and metrics, and the trivial
    baselines with the run's best held-out score beside them."""
    others = sorted({k for r in rows for k in r} - {"episode", LOSS, SMOOTH})
    return _finite({
        "name": name,
        "written": utc_iso(),
        "outcome": asdict(status) if status else None,
        "episodes": {"done": status.episode if status else None, "total": status.total if status else None,
                     "logged": len(rows)},
        "config": config,
        "command": command,
        "losses": [{"episode": int(r["episode"]), "loss": r.get(LOSS), "loss_smooth": r.get(SMOOTH)}
                   for r in rows if LOSS in r],
        "metrics": {"final": final_metrics(rows),
                    "per_episode": [{"episode": int(r["episode"]), **{k: r[k] for k in others if k in r}}
                                    for r in rows if any(k in r for k in others)]},
        "baselines": _baselines(baselines, rows),
        "checkpoints": {"best": best, "latest": asdict(manifest) if manifest else None},
        "sessions": sessions(events),
    })


def dumps(log: dict[str, Any]) -> bytes:
    """The log as strict, indented JSON bytes."""
    return json.dumps(log, indent=1, allow_nan=False).encode()
