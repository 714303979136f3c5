"""What every benchmark shares: its command line, RESULT lines, medians, the device, the machine, and configs."""
from __future__ import annotations

import argparse
import os
import platform
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from tests.helpers import compose_cfg

if TYPE_CHECKING:
    from omegaconf import DictConfig

REPO = Path(__file__).resolve().parents[1]


def parse_quick(description: str, argv: Sequence[str] | None = None) -> bool:
    """Parse a benchmark's command line (`--quick` only); True for the short 2-core CPU variant."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="the short variant for a 2-core CPU")
    return parser.parse_args(argv).quick


def result(name: str, value: float, unit: str) -> None:
    """Print one result as `RESULT <name> <value> <unit>`, the line the runner collects."""
    print(f"RESULT {name} {value:.4g} {unit}", flush=True)


def note(text: str) -> None:
    """Print a progress or explanation line (anything that is not a RESULT)."""
    print(text, flush=True)


def median(values: Sequence[float]) -> float:
    """The median, the figure every repeated measurement here reports (the machine is shared and noisy)."""
    return statistics.median(values)


def device() -> str:
    """'cuda' when a GPU is present (the full variant's home), else 'cpu'."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pin_threads() -> int:
    """On the CPU, one torch thread: with two OpenMP threads on this shared 2-core machine a step is 10-40x slower
    whenever another process runs (each parallel region waits for the descheduled thread). Returns the count."""
    import torch

    if device() == "cpu":
        torch.set_num_threads(1)
    return torch.get_num_threads()


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """One line naming the CPU, cores, Python, torch and the device the benchmarks run on."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}, torch {torch.__version__}; "
            f"{gpu}")


def compose(root: Path, *overrides: str) -> DictConfig:
    """The composed config of train.py with `overrides`, all files under `root`, starting fresh (no resume)."""
    return compose_cfg("platform=local", f"storage.local={root}", "ckpt_path=null", *overrides)
