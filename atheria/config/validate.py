"""Refuse bad input before any work starts, with one line naming the key and what is accepted."""
from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from atheria.checks import (
    fraction,
    is_int,
    is_number,
    non_negative_int,
    optional_positive_number,
    positive_int,
    positive_number,
    require,
)
from atheria.config.resolvers import CONF_DIR, RUNTIME_SIGNS, detect_runtime
from atheria.config.secrets import refuse_secrets
from atheria.errors import ConfigError
from atheria.families import family_of
from atheria.session.clock import SESSION_CLOCK_PID

GROUPS = ("model", "preset", "platform", "logger", "trainer", "task", "experiment", "hparams_search")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=,+-]*$")
# The longest file a name makes, '.{name}_REPORT.md.partial-<32 hex>', then stays within 255 bytes (NAME_MAX).
NAME_MAX_CHARS = 200
CLOCK_SKEW_S = 60  # run.session_start may be this far ahead of this machine's clock (another machine's start)


def check_group_choices(overrides: Sequence[str], conf_dir: Path, groups: Sequence[str] = GROUPS) -> None:
    """Refuse `group=option` overrides naming no file in conf/group/, before Hydra composes anything."""
    for item in overrides:
        key, sep, value = item.lstrip("+~").partition("=")
        if not sep or key not in groups or "(" in value or value in ("", "null"):
            continue
        accepted = sorted(p.stem for p in (conf_dir / key).glob("*.yaml"))
        for option in value.replace("[", "").replace("]", "").split(","):  # a, a,b (a sweep) or [a,b] (several)
            if option not in accepted:
                raise ConfigError(f"{key}={option!r} is not a {key} option; accepted: {', '.join(accepted)}")


def check_name(name: Any) -> None:
    """Refuse an experiment name that is no safe directory name (it names the experiment's folders and files)."""
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or ".." in name or len(name) > NAME_MAX_CHARS:
        raise ConfigError(f"name={name!r} is invalid; accepted: up to {NAME_MAX_CHARS} ASCII letters, digits and "
                          "_ . = , + - (no '/', no '..', no spaces), starting with a letter or digit")


def past_epoch_seconds(v: Any) -> bool:
    """Null (detect), or a finite epoch time in seconds that is not in the future."""
    return v is None or (is_number(v) and math.isfinite(v) and 0 < v <= time.time() + CLOCK_SKEW_S)


def check_runtime(cfg: DictConfig, detect: Callable[[], Optional[str]] = detect_runtime) -> None:
    """Refuse a Colab or Kaggle platform on a machine that is not that runtime, unless platform.force=true: it would
    write under /content or /kaggle here and take another machine's budget. Separate from validate() so that
    `atheria estimate` can still plan a Colab run from a laptop."""
    wanted = OmegaConf.select(cfg, "platform.runtime")
    if wanted is None or OmegaConf.select(cfg, "platform.force") or detect() == wanted:
        return
    runtime, signs = RUNTIME_SIGNS[wanted]
    name = OmegaConf.select(cfg, "platform.name")
    raise ConfigError(f"platform={name} but this machine is not a {runtime} runtime ({signs}); run it on {runtime}, "
                      f"use platform=local or platform=auto, or add platform.force=true to use {name}'s budget and "
                      "paths here")


def task_name(cfg: DictConfig) -> str:
    """The config's `task`, one of conf/task/*.yaml (each has its module in atheria/tasks/)."""
    tasks = sorted(p.stem for p in (CONF_DIR / "task").glob("*.yaml"))
    return require(cfg, "task", lambda v: v in tasks, ", ".join(tasks))


def validate(cfg: DictConfig) -> None:
    """Check every key the tasks share, and the family's; raises ConfigError with a one-line message on the first bad
    one. A task's own keys are its module's check() (atheria.tasks.check runs both)."""
    refuse_secrets(cfg)
    task_name(cfg)
    family_of(cfg).check(cfg)
    require(cfg, "optim.lr", positive_number, "a positive number (default 1e-4)")
    require(cfg, "optim.weight_decay", lambda v: is_number(v) and v >= 0, "a number >= 0")
    require(cfg, "optim.grad_clip", optional_positive_number, "a positive number or null")
    require(cfg, "run.total_episodes", positive_int, "a positive integer")
    require(cfg, "run.save_every", positive_int, "a positive integer")
    require(cfg, "run.sync_every", non_negative_int, "an integer >= 0 (0 = mirror only at the end)")
    require(cfg, "run.max_hours", optional_positive_number, "a positive number of hours or null (unlimited)")
    require(cfg, "run.stop_at", fraction, "a fraction in (0, 1]")
    require(cfg, "run.session_start", past_epoch_seconds, "null (detect the session's start) or the start in epoch "
            f"seconds, e.g. $(date +%s): finite and not in the future (now {time.time():.0f})")
    require(cfg, "run.keep_best", positive_int, "a positive integer")
    require(cfg, "run.media_every", non_negative_int, "an integer >= 0 (0 = only at each session's end)")
    if OmegaConf.select(cfg, "logger.csv._target_") != "atheria.loggers.HistoryCSVLogger":
        raise ConfigError("logger.csv is the run's history (metrics.csv: resumes, `atheria status`, plots and the "
                          "report read it) and cannot be removed or replaced; accepted: logger=wandb, "
                          "logger=tensorboard or logger=[wandb,tensorboard] beside it")
    if "wandb" in cfg.logger:
        require(cfg, "logger.wandb.log_checkpoints", lambda v: isinstance(v, bool), "true or false")
    require(cfg, "run.smoothing", fraction, "a fraction in (0, 1]")
    require(cfg, "seed", is_int, "an integer")
    require(cfg, "platform.runtime", lambda v: v is None or v in RUNTIME_SIGNS, "colab, kaggle or null")
    require(cfg, "platform.session_clock", lambda v: v in SESSION_CLOCK_PID,
            "runtime (the budget counts from the runtime's start) or process (from this process's start)")
    require(cfg, "platform.flush", lambda v: v in (None, "drive"), "drive (flush Google Drive at exit) or null")
    require(cfg, "platform.force", lambda v: isinstance(v, bool), "true or false")
    require(cfg, "platform.devices", lambda v: v == "auto" or positive_int(v),
            "a positive number of devices, or auto (every visible GPU)")
    require(cfg, "storage.local", lambda v: isinstance(v, str) and v != "", "a directory path")
    require(cfg, "storage.remote", lambda v: v is None or (isinstance(v, str) and v != ""),
            "null, a directory path, gs://bucket/prefix or any fsspec URL")
    require(cfg, "ckpt_path", lambda v: v is None or (isinstance(v, str) and v != ""),
            "last, null, a checkpoint path or URL")
    check_name(cfg.get("name"))
