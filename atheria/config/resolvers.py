"""OmegaConf resolvers used in conf/: the detected platform's values and the precision for the device."""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Mapping

from omegaconf import OmegaConf

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def detect_platform(environ: Mapping[str, str] = os.environ, content: Path = Path("/content")) -> str:
    """'kaggle' (KAGGLE_* variables), 'colab_free' (COLAB_* variables or /content), else 'local'."""
    if any(key.startswith("KAGGLE_") for key in environ):
        return "kaggle"
    if any(key.startswith("COLAB_") for key in environ) or content.is_dir():
        return "colab_free"
    return "local"


@functools.lru_cache(maxsize=None)
def _platform_file(name: str) -> Any:
    return OmegaConf.load(CONF_DIR / "platform" / f"{name}.yaml")


def detected(key: str) -> Any:
    """The value of `key` in the detected platform's config file (resolver `${detected:key}`)."""
    return OmegaConf.select(_platform_file(detect_platform()), key)


def auto_precision() -> str:
    """Mixed precision on a GPU, full precision on the CPU (resolver `${auto_precision:}`)."""
    import torch

    return "16-mixed" if torch.cuda.is_available() else "32-true"


def register_resolvers() -> None:
    """Register Atheria's resolvers once; safe to call repeatedly."""
    for name, fn in (("detected", detected), ("auto_precision", auto_precision)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
