"""Keep secrets out of anything written to disk: values under *KEY/*TOKEN/*SECRET/*PASSWORD keys are masked, and
secrets in the config or on the command line are refused, naming the key and where the secret goes instead."""
from __future__ import annotations

import re
from typing import Any, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from atheria.errors import ConfigError

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


def _refusal(key: str, value: Any) -> Optional[str]:
    """The one line refusing `value` under the dotted `key` if it is a secret (a value under a secret-looking key, or
    a URL with a password), naming the key, never the value; None if it is not."""
    if SECRET_KEY.search(key) and value is not None and not isinstance(value, (dict, list)):
        return (f"{key}={MASK} is refused: Atheria takes no secrets in its config or command line (they would be "
                "recorded in reports, W&B and a sweep's multirun.yaml); accepted: WANDB_API_KEY or `wandb login` for "
                "W&B, GOOGLE_APPLICATION_CREDENTIALS or `gcloud auth application-default login` for gs://")
    if isinstance(value, str) and URL_PASSWORD.match(value):
        return (f"{key}={mask_url(value)!r} has a password in the URL; accepted: the URL without user:password@, with "
                "credentials in the filesystem's own config (SSH keys, gcloud, AWS or fsspec config files)")
    return None


def refuse_secrets(cfg: DictConfig) -> None:
    """Raise ConfigError on the first secret in the resolved config (from a config file, the environment or an
    override)."""
    def walk(node: Any, prefix: str) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            refusal = _refusal(f"{prefix}{k}", v)
            if refusal:
                raise ConfigError(refusal)
            walk(v, f"{prefix}{k}.")

    walk(OmegaConf.to_container(cfg, resolve=True), "")


def refuse_secret_overrides(argv: Sequence[str]) -> None:
    """Raise ConfigError on the first secret among command-line overrides (each value of a sweep list judged), before
    Hydra records them: a sweep writes its overrides to multirun.yaml before any job starts."""
    for item in argv:
        key, sep, value = item.partition("=")
        if item.startswith("-") or not sep or value in ("", "null"):
            continue
        for one in value.split(","):
            refusal = _refusal(key.lstrip("+~"), one)
            if refusal:
                raise ConfigError(refusal)
