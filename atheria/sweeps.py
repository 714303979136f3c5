"""Sweeps that survive sessions: stable job names from overrides, one session budget for the whole sweep,
and a sweep summary at the end of each session. Hydra's multirun has no resume of its own; here every job is an
experiment with a stable directory, so rerunning the same `-m` command resumes the sweep."""
from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import sys
from typing import Any, Optional, Sequence

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

SWEEP_ENV = "ATHERIA_SWEEP"
SWEPT_ENV = "ATHERIA_SWEPT"
# Overrides that change where or how long a job runs, not what it trains: never part of a job's name.
PLUMBING = ("preset", "platform", "logger", "storage.", "ckpt_path", "name", "hydra", "run.max_hours",
            "run.session_start", "run.final_sync_timeout", "run.total_episodes", "run.sync_every", "trainer",
            "hparams_search", "experiment", "+", "~")
# Overrides already spelled out by the default name (e.g. UNET_64ch_D8).
IN_TAG = ("model", "model.arch", "model.d_state", "model.hidden_channels", "model.lora_r")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.=,+-]")
_spent_sweep: Optional[str] = None


def job_name(base: str, overrides: Sequence[str], name_given: bool) -> str:
    """`base` plus the job's swept overrides (readable, stable, no timestamps): UNET_16ch_D4__optim.lr=1e-3."""
    swept = os.environ.get(SWEPT_ENV)
    keys = set(swept.split(",")) if swept else None
    parts = []
    for item in overrides:
        key = item.partition("=")[0]
        if (keys is not None and key not in keys) or key.startswith(PLUMBING) or (not name_given and key in IN_TAG):
            continue
        parts.append(_UNSAFE.sub("_", item))
    return f"{base}__{','.join(sorted(parts))}" if parts else base


def swept_keys(overrides: Sequence[str], sweeper_params: Optional[Any] = None) -> set[str]:
    """Keys that vary across a sweep's jobs: comma lists and sweep functions, plus a sweeper's search space."""
    keys = {o.partition("=")[0].lstrip("+~") for o in overrides
            if "," in o.partition("=")[2] or o.partition("=")[2].startswith(("range(", "choice(", "interval(", "glob("))}
    return keys | set(sweeper_params or {})


def current_job_name(cfg: DictConfig) -> str:
    """The experiment name of this job: cfg.name, made unique per job when running under `-m`."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return cfg.name
    overrides = list(HydraConfig.get().overrides.task)
    return job_name(cfg.name, overrides, any(o.startswith("name=") for o in overrides))


def sweep_id() -> Optional[str]:
    """The id of the sweep this process runs, if any (set at the start of a multirun)."""
    return os.environ.get(SWEEP_ENV)


def mark_budget_spent() -> None:
    """A job of a sweep stopped on the session budget: the sweep's remaining jobs in this session are skipped."""
    global _spent_sweep
    _spent_sweep = sweep_id()


def budget_spent() -> bool:
    """True once a job of the running sweep stopped on the budget in this process."""
    return _spent_sweep is not None and _spent_sweep == sweep_id()


def best_smoothed_loss(logs_dir: str) -> Optional[float]:
    """The lowest train/loss_smooth in an experiment's metrics (its whole history), or None."""
    path = os.path.join(logs_dir, "metrics.csv")
    if not os.path.isfile(path):
        return None
    with open(path, newline="") as f:
        values = [float(r["train/loss_smooth"]) for r in csv.DictReader(f) if r.get("train/loss_smooth")]
    return min(values) if values else None


class SweepSummary(Callback):
    """Hydra callback: names the sweep at its start, and writes sweep_summary.md/.csv (mirrored) at its end."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.command = ""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from atheria.config import ConfigError, check_runtime

        try:  # before Hydra creates the sweep folder under storage.local (/content/atheria for a Colab platform)
            check_runtime(config)
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        overrides = list(config.hydra.overrides.task)
        command = " ".join(sorted(overrides))
        defining = " ".join(sorted(o for o in overrides if not o.partition("=")[0].startswith(PLUMBING)))
        os.environ[SWEEP_ENV] = "sweep-" + hashlib.sha1(defining.encode()).hexdigest()[:8]  # same sweep, any budget
        os.environ[SWEPT_ENV] = ",".join(sorted(swept_keys(overrides, config.hydra.sweeper.get("params"))))
        self.rows, self.command = [], command

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        from atheria.callbacks.status_file import read_status
        from atheria.storage.layout import Layout

        overrides = list(job_return.overrides or [])
        name = job_name(config.name, overrides, any(o.startswith("name=") for o in overrides))
        logs = Layout(config.storage.local, name).logs
        status = read_status(logs)
        self.rows.append({"job": name, "overrides": " ".join(overrides),
                          "episodes": f"{status.episode}/{status.total}" if status else "0",
                          "best_loss_smooth": best_smoothed_loss(logs), "state": status.state if status else "not started"})

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from atheria.storage.atomic import write_bytes_atomic
        from atheria.storage.paths import join

        sweep = sweep_id() or "sweep"
        header = ["job", "overrides", "episodes", "best_loss_smooth", "state"]
        table = io.StringIO()
        writer = csv.DictWriter(table, fieldnames=header)
        writer.writeheader()
        writer.writerows(self.rows)
        lines = [f"# Sweep {sweep}", "", f"    python train.py -m {self.command}", "",
                 "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        lines += ["| " + " | ".join("" if r[k] is None else str(r[k]) for k in header) + " |" for r in self.rows]
        files = {"sweep_summary.csv": table.getvalue(), "sweep_summary.md": "\n".join(lines) + "\n"}
        roots = [config.storage.local] + ([config.storage.remote] if config.storage.remote else [])
        for root in roots:
            for filename, text in files.items():
                try:
                    write_bytes_atomic(join(root, "sweeps", sweep, filename), text.encode())
                except Exception as exc:  # the summary is a convenience; a failing remote only warns
                    print(f"Warning: could not write {filename} under {root} ({type(exc).__name__}: {exc})")
        print(f"Sweep summary: {join(config.storage.local, 'sweeps', sweep, 'sweep_summary.md')}")
