"""Shared helpers for tests that run train.py in real subprocesses."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = ("qca.grid_size=8", "qca.steps=3", "model.hidden_channels=8", "run.total_episodes=4", "run.save_every=2",
        "platform=local")


def train_cmd(root: Path, *overrides: str) -> list[str]:
    """The command line of a tiny train.py run whose files all go under `root`."""
    return [sys.executable, str(REPO / "train.py"), *TINY, f"storage.local={root}", *overrides]


def run_train(root: Path, *overrides: str, cwd: Path | None = None, timeout: float = 300,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a tiny train.py to completion and return the finished process (text output captured)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline", **(env or {})}
    return subprocess.run(train_cmd(root, *overrides), cwd=cwd or root.parent, env=full_env, text=True,
                          capture_output=True, timeout=timeout)


def metrics(root: Path, name: str) -> list[dict[str, str]]:
    """Rows of an experiment's metrics.csv that carry a training loss."""
    import csv

    with open(root / "logs" / name / "metrics.csv") as f:
        return [row for row in csv.DictReader(f) if row.get("train/loss")]
