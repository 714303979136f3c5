"""Keep secrets out of anything written to disk: values under *KEY/*TOKEN/*SECRET/*PASSWORD keys are masked."""
from __future__ import annotations

import re
from typing import Any

from omegaconf import DictConfig, OmegaConf

SECRET_KEY = re.compile(r"(key|token|secret|password|credential)s?$", re.IGNORECASE)
MASK = "***"


def _mask(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: MASK if SECRET_KEY.search(str(k)) and v is not None else _mask(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_mask(v) for v in node]
    return node


def redacted(cfg: DictConfig) -> DictConfig:
    """A resolved copy of `cfg` with secret-looking values masked, safe to save or print."""
    return OmegaConf.create(_mask(OmegaConf.to_container(cfg, resolve=True)))
