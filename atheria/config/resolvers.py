"""OmegaConf resolvers used in atheria/conf/: the detected platform's values and the precision for the device."""
from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from typing import Any, Mapping, Optional

from omegaconf import OmegaConf

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"  # shipped inside the package (package data)
KAGGLE_INPUT = Path("/kaggle/input")  # mounted by Kaggle for a notebook's inputs; our runs never create it
RUNTIME_PLATFORM = {"kaggle": "kaggle", "colab": "colab_free", None: "local"}
# What each runtime is told by (detect_runtime), for the refusal of its platform on a machine that is not one.
RUNTIME_SIGNS = {"colab": ("Colab", "no COLAB_* variables, google.colab not importable"),
                 "kaggle": ("Kaggle", "no KAGGLE_* variables, no /kaggle/input")}


def _importable(module: str) -> bool:
    """True when `module` could be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


def detect_runtime(environ: Mapping[str, str] = os.environ, kaggle_input: Path = KAGGLE_INPUT,
                   colab_module: str = "google.colab") -> Optional[str]:
    """'kaggle' (KAGGLE_* variables or /kaggle/input), 'colab' (COLAB_* variables or google.colab importable), else
    None. Only signals the runtimes have and a laptop lacks: never a folder our own runs create (/content)."""
    if any(key.startswith("KAGGLE_") for key in environ) or kaggle_input.is_dir():
        return "kaggle"
    if any(key.startswith("COLAB_") for key in environ) or _importable(colab_module):
        return "colab"
    return None


TPU_VARIABLES = ("TPU_NAME", "TPU_ACCELERATOR_TYPE", "COLAB_TPU_ADDR", "XRT_TPU_CONFIG")
DEVICES = Path("/dev")


def detect_tpu(environ: Mapping[str, str] = os.environ, devices: Path = DEVICES) -> bool:
    """Whether this machine's accelerator is a TPU: the variables TPU runtimes set (Kaggle's and Colab's TPU VMs,
    Cloud TPU), or a TPU VM's /dev/accel* devices."""
    return any(environ.get(key) for key in TPU_VARIABLES) or any(devices.glob("accel*"))


def if_tpu(tpu: Any, other: Any) -> Any:
    """`tpu` on a TPU machine, else `other` (resolver `${if_tpu:TPU,OTHER}`: Kaggle's session limit by accelerator)."""
    return tpu if detect_tpu() else other


def detect_platform(environ: Mapping[str, str] = os.environ, kaggle_input: Path = KAGGLE_INPUT,
                    colab_module: str = "google.colab") -> str:
    """The platform `platform=auto` picks: 'kaggle', 'colab_free' (Pro cannot be told from inside), else 'local'."""
    return RUNTIME_PLATFORM[detect_runtime(environ, kaggle_input, colab_module)]


@functools.lru_cache(maxsize=None)
def _platform_file(name: str) -> Any:
    return OmegaConf.load(CONF_DIR / "platform" / f"{name}.yaml")


def detected(key: str) -> Any:
    """The value of `key` in the detected platform's config file (resolver `${detected:key}`)."""
    return OmegaConf.select(_platform_file(detect_platform()), key)


def auto_precision() -> str:
    """Mixed precision on a GPU: bfloat16 where its tensor cores have it (compute capability 8 and later: A100, L4,
    H100), float16 with loss scaling before (T4, P100); full precision on the CPU (resolver `${auto_precision:}`)."""
    import torch

    if not torch.cuda.is_available():
        return "32-true"
    return "bf16-mixed" if torch.cuda.get_device_capability()[0] >= 8 else "16-mixed"


def gpu_batch(*, _root_: Any) -> int:
    """qca.batch_size's default (resolver `${gpu_batch:}`): on a GPU, the episodes per rollout that fill it
    (atheria.qca.memory.fill_batch, from the GPU's total memory, so the same on every rank); 1 on the CPU and for
    other families."""
    model, qca = _root_.model, _root_.qca
    if model.get("family") != "qca":
        return 1
    return _gpu_batch(str(_root_.trainer.accelerator), model.arch, model.d_state, model.hidden_channels,
                      qca.grid_size, qca.steps)


@functools.lru_cache(maxsize=None)
def _gpu_batch(accelerator: str, arch: str, d_state: int, hidden: int, grid: int, steps: int) -> int:
    import torch

    if accelerator not in ("auto", "gpu", "cuda") or not torch.cuda.is_available():
        return 1
    from atheria.models import ARCHITECTURES, build_law
    from atheria.qca import Physics
    from atheria.qca.memory import fill_batch

    if arch not in ARCHITECTURES:
        return 1  # refused in one line by the family's check
    total = torch.cuda.get_device_properties(0).total_memory
    return fill_batch(build_law(arch, d_state, hidden), Physics(steps=steps), grid, total)


def register_resolvers() -> None:
    """Register Atheria's resolvers once; safe to call repeatedly."""
    for name, fn in (("detected", detected), ("auto_precision", auto_precision), ("gpu_batch", gpu_batch),
                     ("if_tpu", if_tpu)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
