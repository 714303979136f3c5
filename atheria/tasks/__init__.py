"""The tasks a run can be (`task=`), each one module with `run(cfg, local, remote, resume, source) -> Outcome` and,
where it has keys or needs of its own, `check(cfg)` and `check_needs(cfg)`: train (Lightning's fit of a model
family) and rl_scheduler (stable-baselines3 over the language model). Adding a task: its module here and its
`conf/task/NAME.yaml`. A task module imports its heavy libraries inside run(), so checking a config stays quick."""
from __future__ import annotations

import importlib
import shlex
from pathlib import Path
from typing import Any, Callable, Optional

from omegaconf import DictConfig, OmegaConf

from atheria.config.secrets import redacted
from atheria.config.validate import task_name, validate
from atheria.families import family_of
from atheria.session.kit import SessionSettings
from atheria.storage.atomic import write_bytes_atomic
from atheria.storage.layout import Layout
from atheria.sweeps import sweep_id


def _hook(name: str, hook: str) -> Optional[Callable[..., Any]]:
    """Function `hook` of task `name`'s module (run, check, check_needs), or None where the task has none."""
    return getattr(importlib.import_module(f"atheria.tasks.{name}"), hook, None)


def task_of(name: str) -> Callable[..., Any]:
    """The `run` of task `name` (check() made sure it names a conf/task/ file)."""
    run = _hook(name, "run")
    assert run is not None, name
    return run


def check(cfg: DictConfig) -> None:
    """Refuse, in one line, any bad key of the run: the task's own first (they say what the task needs of the
    rest), then those every task shares and the family's (validate)."""
    own = _hook(task_name(cfg), "check")
    if own is not None:
        own(cfg)
    validate(cfg)


def where(cfg: DictConfig) -> str:
    """The end of a task's describe line: the platform and the session budget."""
    budget = f"{cfg.run.max_hours} h budget" if cfg.run.max_hours else "no time budget"
    return f"on {cfg.platform.name} ({budget})"


def write_config(cfg: DictConfig, local: Layout) -> None:
    """The composed config, secrets masked, as logs/{name}/config.yaml."""
    Path(local.logs).mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(str(Path(local.logs) / "config.yaml"), OmegaConf.to_yaml(redacted(cfg)).encode())


def check_needs(cfg: DictConfig) -> None:
    """Refuse, before any work, what would fail once training starts: the family's needs (a pretrained model out of
    reach, an episode larger than the device's free memory), then the task's own (train: a W&B logger without a
    login)."""
    family_of(cfg).check_needs(cfg)
    own = _hook(cfg.task, "check_needs")
    if own is not None:
        own(cfg)


def session_settings(cfg: DictConfig) -> SessionSettings:
    """The typed settings of the session kit (atheria.session.kit), from a validated config."""
    run = cfg.run
    return SessionSettings(name=cfg.name, max_hours=run.max_hours, stop_at=run.stop_at,
                           session_start=run.session_start, session_clock=cfg.platform.session_clock,
                           final_sync_timeout=run.final_sync_timeout, sweep=sweep_id())


def launch_command(cfg: DictConfig) -> str:
    """The command that continues this run: the Hydra overrides it was started with, minus any `ckpt_path`
    (the default, last, resumes); outside Hydra (a notebook calling train), its name and local root."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        overrides = [o for o in HydraConfig.get().overrides.task if not o.lstrip("+~").startswith("ckpt_path=")]
    else:
        overrides = [f"name={cfg.name}", f"storage.local={cfg.storage.local}"]
    return " ".join(["python train.py", *map(shlex.quote, overrides)])
