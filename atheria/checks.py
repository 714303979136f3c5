"""The one-line refusal of a config key and the value tests every config check shares: atheria/config/validate.py's
and each family's (atheria/families/). Beside errors.py at the bottom of the layers, so both can use it."""
from __future__ import annotations

from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from atheria.errors import ConfigError


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def positive_int(v: Any) -> bool:
    return is_int(v) and v > 0


def non_negative_int(v: Any) -> bool:
    return is_int(v) and v >= 0


def positive_number(v: Any) -> bool:
    return is_number(v) and v > 0


def fraction(v: Any) -> bool:
    return is_number(v) and 0 < v <= 1


def optional_positive_number(v: Any) -> bool:
    return v is None or positive_number(v)


def require(cfg: DictConfig, key: str, ok: Callable[[Any], bool], accepted: str) -> Any:
    """The value of `key`, or a ConfigError naming the key, its value and what is accepted when `ok` refuses it."""
    value = OmegaConf.select(cfg, key, throw_on_missing=False)
    if not ok(value):
        raise ConfigError(f"{key}={value!r} is invalid; accepted: {accepted}")
    return value
