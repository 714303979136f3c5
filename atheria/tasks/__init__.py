"""The tasks a run can be (`task=`), each one module with `run(cfg, local, remote, resume, source) -> Outcome`:
train (Lightning's fit of a model family) and rl_scheduler (stable-baselines3 over the language model). Adding a
task: its module here and its `conf/task/NAME.yaml`."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from atheria.config.secrets import redacted
from atheria.storage.atomic import write_bytes_atomic
from atheria.storage.layout import Layout


def task_of(name: str) -> Callable[..., Any]:
    """The `run` of task `name` (validate checked it names a conf/task/ file); its module is imported only now, so
    stable-baselines3 only for rl_scheduler."""
    return importlib.import_module(f"atheria.tasks.{name}").run  # type: ignore[no-any-return]


def where(cfg: DictConfig) -> str:
    """The end of a task's describe line: the platform and the session budget."""
    budget = f"{cfg.run.max_hours} h budget" if cfg.run.max_hours else "no time budget"
    return f"on {cfg.platform.name} ({budget})"


def write_config(cfg: DictConfig, local: Layout) -> None:
    """The composed config, secrets masked, as logs/{name}/config.yaml."""
    Path(local.logs).mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(str(Path(local.logs) / "config.yaml"), OmegaConf.to_yaml(redacted(cfg)).encode())
