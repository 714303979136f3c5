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
from typing import Any, Collection, Optional, Sequence

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

SWEEP_ENV = "ATHERIA_SWEEP"
SWEPT_ENV = "ATHERIA_SWEPT"
# Overrides that change where or how long a job runs, not what it trains: left out of the sweep's id, and of job names
# unless they are swept.
PLUMBING = ("preset", "platform", "logger", "storage.", "ckpt_path", "name", "hydra", "run.max_hours",
            "run.session_start", "run.final_sync_timeout", "run.total_episodes", "run.sync_every", "trainer",
            "hparams_search", "experiment", "+", "~")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.=,+-]|\.(?=\.)")  # and '..', which a name may not hold
_REF = re.compile(r"\$\{([\w.]+)\}")
_spent_sweep: Optional[str] = None


def _key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def job_name(base: str, overrides: Sequence[str], swept: Collection[str] = (), spelled: Collection[str] = ()) -> str:
    """`base` plus the job's `swept` overrides it does not `spell` (with nothing swept: every override but plumbing),
    readable and stable: UNET_16ch_D4__optim.lr=0.001. Where a value had to be made safe for a folder name, a short
    hash of those overrides follows (`x=a/b` and `x=a_b` stay two jobs)."""
    def counts(key: str) -> bool:
        if key in spelled or any(s.startswith(f"{key}.") for s in spelled):  # `model` spelled by its model.tag
            return False
        return key in swept if swept else not key.startswith(PLUMBING)

    parts = sorted(o for o in overrides if counts(_key(o)))
    safe = [_UNSAFE.sub("_", o) for o in parts]
    name = f"{base}__{','.join(safe)}" if parts else base
    if safe == parts:
        return name
    return f"{name}__{hashlib.sha1(' '.join(parts).encode()).hexdigest()[:6]}"


def spelled_keys(cfg: DictConfig) -> set[str]:
    """`name` and every key its interpolations reach: the default `${model.tag}` spells model.tag and the keys
    in it (model.hidden_channels, model.d_state)."""
    raw, keys, todo = OmegaConf.to_container(cfg, resolve=False), set(), ["name"]
    while todo:
        key = todo.pop()
        node: Any = raw
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if key not in keys and isinstance(node, str):
            todo += _REF.findall(node)
        keys.add(key)
    return keys


def swept_keys(overrides: Sequence[str], sweeper_params: Optional[Any] = None) -> set[str]:
    """Keys that vary across a sweep's jobs: sweep overrides (a,b, range(), choice(), glob(), interval()), plus a
    sweeper's search space."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return {o.key_or_group for o in parsed if o.is_sweep_override()} | set(sweeper_params or {})


def current_job_name(cfg: DictConfig) -> str:
    """The experiment name of this job: cfg.name, made unique per job when running under `-m`."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return cfg.name
    swept = os.environ.get(SWEPT_ENV)
    return job_name(cfg.name, list(HydraConfig.get().overrides.task), swept.split(",") if swept else (),
                    spelled_keys(cfg))


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
        from atheria.config import check_runtime
        from atheria.config.secrets import refuse_secrets
        from atheria.errors import ConfigError

        try:  # before Hydra writes multirun.yaml under storage.local (/content/atheria for a Colab platform)
            check_runtime(config)
            refuse_secrets(OmegaConf.masked_copy(config, [k for k in config if k != "hydra"]))
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        overrides = list(config.hydra.overrides.task)
        command = " ".join(sorted(overrides))
        swept = swept_keys(overrides, config.hydra.sweeper.get("params"))
        defining = " ".join(sorted(o for o in overrides if _key(o) in swept or not _key(o).startswith(PLUMBING)))
        os.environ[SWEEP_ENV] = "sweep-" + hashlib.sha1(defining.encode()).hexdigest()[:8]  # same sweep, any budget
        os.environ[SWEPT_ENV] = ",".join(sorted(swept))
        self.rows, self.command = [], command

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        from atheria.session.status import read_status
        from atheria.storage.layout import Layout

        job = job_return.cfg  # the job's config, named by the runner (current_job_name)
        logs = Layout(job.storage.local, job.name).logs
        status = read_status(logs)
        self.rows.append({"job": job.name, "overrides": " ".join(job_return.overrides or []),
                          "episodes": f"{status.episode}/{status.total}" if status else "0",
                          "best_loss_smooth": best_smoothed_loss(logs),
                          "state": status.state if status else "not started"})

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
