"""Keep secrets out of anything written to disk: values under *KEY/*TOKEN/*SECRET/*PASSWORD keys are masked, and
the config is searched for secrets, which Atheria refuses to take there (see validate)."""
from __future__ import annotations

import re
from typing import Any, Iterator

from omegaconf import DictConfig, OmegaConf

SECRET_KEY = re.compile(r"(key|token|secret|password|credential)s?$", re.IGNORECASE)
URL_PASSWORD = re.compile(r"^([a-z][a-z0-9+.-]*://[^/@\s:]*):[^/@\s]*@", re.IGNORECASE)
MASK = "***"


def _mask(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: MASK if SECRET_KEY.search(str(k)) and v is not None else _mask(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_mask(v) for v in node]
    return node


def redacted(cfg: DictConfig, resolve: bool = True) -> DictConfig:
    """A copy of `cfg` (resolved unless told otherwise) with secret-looking values masked, safe to save or print."""
    return OmegaConf.create(_mask(OmegaConf.to_container(cfg, resolve=resolve)))


def mask_url(url: str) -> str:
    """A URL with the password of its 'user:password@' part masked, safe to print."""
    return URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{MASK}@", url)


def secrets_in(cfg: DictConfig) -> Iterator[tuple[str, str]]:
    """(dotted key, why) for each value of the resolved config that carries a secret: a non-null value under a
    secret-looking key, or a URL with a password in it."""
    def walk(node: Any, prefix: str) -> Iterator[tuple[str, str]]:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            key = f"{prefix}{k}"
            if SECRET_KEY.search(str(k)) and v is not None and not isinstance(v, (dict, list)):
                yield key, "secret-looking key"
            elif isinstance(v, str) and URL_PASSWORD.match(v):
                yield key, "password in a URL"
            else:
                yield from walk(v, f"{key}.")

    yield from walk(OmegaConf.to_container(cfg, resolve=True), "")
