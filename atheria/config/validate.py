"""Refuse bad input before any work starts, with one line naming the key and what is accepted."""
from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from atheria.config.resolvers import detect_runtime
from atheria.config.secrets import refuse_secrets
from atheria.errors import ConfigError

GROUPS = ("model", "preset", "platform", "logger", "trainer", "task", "experiment", "hparams_search")
TASKS = ("train", "rl_scheduler")
# What a Colab or Kaggle runtime is told by (resolvers.detect_runtime), for the refusal when this machine is not one.
RUNTIME_SIGNS = {"colab": ("Colab", "no COLAB_* variables, google.colab not importable"),
                 "kaggle": ("Kaggle", "no KAGGLE_* variables, no /kaggle/input")}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=,+-]*$")
# The longest file a name makes, '.{name}_REPORT.md.partial-<32 hex>', then stays within 255 bytes (NAME_MAX).
NAME_MAX_CHARS = 200
CLOCK_SKEW_S = 60  # run.session_start may be this far ahead of this machine's clock (another machine's start)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def positive_int(v: Any) -> bool:
    return _is_int(v) and v > 0


def non_negative_int(v: Any) -> bool:
    return _is_int(v) and v >= 0


def positive_number(v: Any) -> bool:
    return _is_number(v) and v > 0


def fraction(v: Any) -> bool:
    return _is_number(v) and 0 < v <= 1


def optional_positive_number(v: Any) -> bool:
    return v is None or positive_number(v)


def _require(cfg: DictConfig, key: str, ok: Callable[[Any], bool], accepted: str) -> Any:
    value = OmegaConf.select(cfg, key, throw_on_missing=False)
    if not ok(value):
        raise ConfigError(f"{key}={value!r} is invalid; accepted: {accepted}")
    return value


def check_group_choices(overrides: Sequence[str], conf_dir: Path, groups: Sequence[str] = GROUPS) -> None:
    """Refuse `group=option` overrides naming no file in conf/group/, before Hydra composes anything."""
    for item in overrides:
        key, sep, value = item.lstrip("+~").partition("=")
        if not sep or key not in groups or "(" in value or value in ("", "null"):
            continue
        accepted = sorted(p.stem for p in (conf_dir / key).glob("*.yaml"))
        for option in value.split(","):
            if option not in accepted:
                raise ConfigError(f"{key}={option!r} is not a {key} option; accepted: {', '.join(accepted)}")


def check_name(name: Any) -> None:
    """Refuse an experiment name that is no safe directory name (it names the experiment's folders and files)."""
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or ".." in name or len(name) > NAME_MAX_CHARS:
        raise ConfigError(f"name={name!r} is invalid; accepted: up to {NAME_MAX_CHARS} ASCII letters, digits and "
                          "_ . = , + - (no '/', no '..', no spaces), starting with a letter or digit")


def past_epoch_seconds(v: Any) -> bool:
    """Null (detect), or a finite epoch time in seconds that is not in the future."""
    return v is None or (_is_number(v) and math.isfinite(v) and 0 < v <= time.time() + CLOCK_SKEW_S)


def _check_qca(cfg: DictConfig) -> None:
    from atheria.models import ARCHITECTURES, LAWS
    from atheria.qca import NORMALIZATIONS

    arch = _require(cfg, "model.arch", lambda v: v in ARCHITECTURES, ", ".join(ARCHITECTURES))
    _require(cfg, "model.d_state", positive_int, "a positive integer (typically 4, 8, 16 or 32)")
    _require(cfg, "model.hidden_channels", positive_int, "a positive integer (typically 16 to 128)")
    multiple = LAWS[arch].grid_multiple
    _require(cfg, "qca.grid_size", lambda v: positive_int(v) and v % multiple == 0,
             f"a positive multiple of {multiple} for model={arch}")
    steps = _require(cfg, "qca.steps", positive_int, "a positive integer")
    _require(cfg, "qca.batch_size", positive_int, "a positive integer")
    _require(cfg, "qca.gamma", lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)")
    _require(cfg, "qca.normalize", lambda v: v in NORMALIZATIONS, ", ".join(NORMALIZATIONS))
    _require(cfg, "qca.bptt_window", lambda v: non_negative_int(v) and v <= steps,
             f"an integer from 0 (full backpropagation) to qca.steps={steps}")
    _require(cfg, "qca.noise", lambda v: isinstance(v, bool), "true or false")
    _require(cfg, "qca.compile", lambda v: isinstance(v, bool), "true or false")
    for term in ("survival", "symmetry", "complexity"):
        _require(cfg, f"qca.weights.{term}", lambda v: _is_number(v) and v >= 0, "a number >= 0")


def _check_lm(cfg: DictConfig) -> None:
    import os

    _require(cfg, "model.pretrained", lambda v: v is None or (isinstance(v, str) and v != ""),
             "a GPT-2 hub name (gpt2, gpt2-medium, ...), a local path, or null for a small random GPT-2")
    for key in ("model.lora_r", "model.lora_alpha", "model.n_layer", "model.n_embd", "model.n_head",
                "data.block_size", "data.batch_size"):
        _require(cfg, key, positive_int, "a positive integer")
    _require(cfg, "model.lora_dropout", lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)")
    _require(cfg, "model.lambda_phi", lambda v: _is_number(v) and v >= 0, "a number >= 0")
    _require(cfg, "model.phi_target", lambda v: _is_number(v) and 0 < v < 10, "a number in (0, 10)")
    _require(cfg, "data.path", lambda v: v is None or (isinstance(v, str) and os.path.exists(v)),
             "an existing .txt file or folder, or null for data.dataset")
    _require(cfg, "data.val_fraction", lambda v: _is_number(v) and 0 < v < 1, "a fraction in (0, 1)")
    _require(cfg, "run.max_epochs", lambda v: v is None or positive_int(v), "a positive integer or null")
    _require(cfg, "init_from", lambda v: v is None, "null (init_from seeds QCA laws; a language model continues with "
             "ckpt_path)")


def _check_rl(cfg: DictConfig) -> None:
    """The RL scheduler's keys (task=rl_scheduler): the agent, its cadence, the base model, the reward weights."""
    from atheria.rl.agents import ALGOS
    from atheria.storage.paths import is_remote

    _require(cfg, "model.family", lambda v: v == "lm", "lm: task=rl_scheduler schedules model=gpt2_lora")
    _require(cfg, "init_from", lambda v: v is None, "null (the scheduler's episodes start from rl.base)")
    _require(cfg, "rl.algo", lambda v: v in ALGOS, ", ".join(ALGOS))
    for key in ("timesteps", "inner_steps", "max_steps", "n_steps", "batch_size", "n_epochs", "save_freq",
                "eval_freq", "n_eval_episodes"):
        _require(cfg, f"rl.{key}", positive_int, "a positive integer")
    _require(cfg, "rl.learning_starts", non_negative_int, "an integer >= 0")
    _require(cfg, "rl.base", lambda v: v is None or (isinstance(v, str) and (is_remote(v) or Path(v).is_file())),
             "null (the model's fresh LoRA), or an existing LM checkpoint path or URL")
    _require(cfg, "rl.lr", positive_number, "a positive number (default 3e-4)")
    _require(cfg, "rl.clip_range", positive_number, "a positive number (default 0.2)")
    _require(cfg, "rl.ent_coef", lambda v: _is_number(v) and v >= 0, "a number >= 0 (default 0.01)")
    _require(cfg, "rl.gamma", fraction, "a fraction in (0, 1] (default 0.99)")
    _require(cfg, "rl.gae_lambda", lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1] (default 0.95)")
    _require(cfg, "rl.net_arch", lambda v: OmegaConf.is_list(v) and len(v) > 0 and all(positive_int(x) for x in v),
             "a list of positive layer widths, e.g. [128,128]")
    for term in ("alpha", "beta", "gamma", "delta"):
        _require(cfg, f"rl.reward.{term}", lambda v: _is_number(v) and v >= 0, "a number >= 0")


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


def validate(cfg: DictConfig) -> None:
    """Check every key a run depends on; raises ConfigError with a one-line message on the first bad one."""
    refuse_secrets(cfg)
    task = _require(cfg, "task", lambda v: v in TASKS, ", ".join(TASKS))
    if task == "rl_scheduler":
        _check_rl(cfg)
    family = _require(cfg, "model.family", lambda v: v in ("qca", "lm"), "qca, lm")
    _check_lm(cfg) if family == "lm" else _check_qca(cfg)
    _require(cfg, "optim.lr", positive_number, "a positive number (default 1e-4)")
    _require(cfg, "optim.weight_decay", lambda v: _is_number(v) and v >= 0, "a number >= 0")
    _require(cfg, "optim.grad_clip", optional_positive_number, "a positive number or null")
    _require(cfg, "run.total_episodes", positive_int, "a positive integer")
    _require(cfg, "run.save_every", positive_int, "a positive integer")
    _require(cfg, "run.sync_every", non_negative_int, "an integer >= 0 (0 = mirror only at the end)")
    _require(cfg, "run.max_hours", optional_positive_number, "a positive number of hours or null (unlimited)")
    _require(cfg, "run.stop_at", fraction, "a fraction in (0, 1]")
    _require(cfg, "run.session_start", past_epoch_seconds, "null (detect the session's start) or the start in epoch "
             f"seconds, e.g. $(date +%s): finite and not in the future (now {time.time():.0f})")
    _require(cfg, "run.keep_best", positive_int, "a positive integer")
    _require(cfg, "run.smoothing", fraction, "a fraction in (0, 1]")
    _require(cfg, "seed", _is_int, "an integer")
    _require(cfg, "platform.runtime", lambda v: v is None or v in RUNTIME_SIGNS, "colab, kaggle or null")
    _require(cfg, "platform.force", lambda v: isinstance(v, bool), "true or false")
    _require(cfg, "storage.local", lambda v: isinstance(v, str) and v != "", "a directory path")
    _require(cfg, "storage.remote", lambda v: v is None or (isinstance(v, str) and v != ""),
             "null, a directory path, gs://bucket/prefix or any fsspec URL")
    _require(cfg, "ckpt_path", lambda v: v is None or (isinstance(v, str) and v != ""),
             "last, null, a checkpoint path or URL")
    check_name(cfg.get("name"))
