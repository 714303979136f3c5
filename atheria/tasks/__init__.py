"""The tasks a run can be (`task=`), each one module with `run(cfg, local, remote, resume, source) -> Outcome` and,
where it has keys of its own, `check(cfg)`: train (Lightning's fit of a model family) and rl_scheduler
(stable-baselines3 over the language model). Adding a task: its module here and its `conf/task/NAME.yaml`. A task
module imports its heavy libraries inside run(), so checking a config stays quick."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from atheria.config.secrets import redacted
from atheria.config.validate import task_name, validate
from atheria.storage.atomic import write_bytes_atomic
from atheria.storage.layout import Layout


def task_of(name: str) -> Callable[..., Any]:
    """The `run` of task `name` (check() made sure it names a conf/task/ file)."""
    return importlib.import_module(f"atheria.tasks.{name}").run  # type: ignore[no-any-return]


def check(cfg: DictConfig) -> None:
    """Refuse, in one line, any bad key of the run: the task's own first (they say what the task needs of the
    rest), then those every task shares and the family's (validate)."""
    own = getattr(importlib.import_module(f"atheria.tasks.{task_name(cfg)}"), "check", None)
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
