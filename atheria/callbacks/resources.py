"""What the machine is doing, framework-neutral: GPU utilisation and memory (NVML, torch's allocator), RAM and CPU
(psutil), and the advice a user needs to size a run to the GPU they were given."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Optional

import psutil

GB = 1024 ** 3
NAN = float("nan")


@dataclass
class Resources:
    """One reading of the machine; a GPU figure is NaN when it cannot be had (no GPU, no NVML, NVML failed)."""

    gpu_util: float = NAN
    gpu_mem_used_gb: float = NAN
    gpu_mem_total_gb: float = NAN
    torch_allocated_gb: float = NAN
    torch_reserved_gb: float = NAN
    process_ram_gb: float = NAN
    ram_used_gb: float = NAN
    ram_total_gb: float = NAN
    ram_percent: float = NAN
    cpu_percent: float = NAN

    @property
    def has_gpu(self) -> bool:
        """Whether NVML gave GPU figures in this reading."""
        return not math.isnan(self.gpu_util)

    def as_metrics(self, prefix: str = "resources/") -> dict[str, float]:
        """The reading as logger metrics; always the same keys, so every session's metrics share one header."""
        return {prefix + key: float(value) for key, value in asdict(self).items()}


class ResourceReader:
    """Reads the first GPU through NVML and the system through psutil; any NVML failure leaves GPU figures NaN,
    is explained once in `gpu_note`, and never reaches training."""

    def __init__(self, device_index: int = 0) -> None:
        self.gpu_note: Optional[str] = None
        self._nvml: Any = None
        self._handle: Any = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
            self._nvml = pynvml
        except Exception as exc:  # library missing, no driver, no device: NVML fails in many ways, all the same here
            self.gpu_note = f"No GPU figures: NVML is unavailable ({_reason(exc)}); logging CPU and RAM only."
        self._process = psutil.Process()
        psutil.cpu_percent(interval=None)  # the first call only starts psutil's measuring interval

    def read(self) -> Resources:
        """A reading now: GPU figures while NVML works, RAM and CPU always."""
        res = Resources()
        if self._handle is not None:
            self._read_gpu(res)
        self._read_torch(res)
        mem = psutil.virtual_memory()
        res.ram_total_gb = mem.total / GB
        res.ram_used_gb = (mem.total - mem.available) / GB
        res.ram_percent = mem.percent
        res.process_ram_gb = self._process.memory_info().rss / GB
        res.cpu_percent = psutil.cpu_percent(interval=None)
        return res

    def _read_gpu(self, res: Resources) -> None:
        nvml = self._nvml
        try:
            util = nvml.nvmlDeviceGetUtilizationRates(self._handle)
            mem = nvml.nvmlDeviceGetMemoryInfo(self._handle)
        except Exception as exc:  # a driver that fails mid-run: stop asking, say why once
            self._handle = None
            self.gpu_note = f"GPU figures stopped: NVML failed ({_reason(exc)}); logging CPU and RAM only."
            return
        res.gpu_util = float(util.gpu)
        res.gpu_mem_used_gb, res.gpu_mem_total_gb = mem.used / GB, mem.total / GB

    @staticmethod
    def _read_torch(res: Resources) -> None:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            res.torch_allocated_gb = torch.cuda.memory_allocated() / GB
            res.torch_reserved_gb = torch.cuda.memory_reserved() / GB


def _reason(exc: BaseException) -> str:
    """An exception as a short reason for one console line."""
    text = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
    return text or type(exc).__name__


def advice(res: Resources, remaining_fraction: Optional[float]) -> list[str]:
    """What to change, if anything: GPU utilisation bands, RAM over 90%, under 10% of the budget left."""
    lines = []
    if res.has_gpu:
        util = res.gpu_util
        if util >= 80:
            lines.append(f"GPU utilisation {util:.0f}%: fine.")
        elif util >= 50:
            lines.append(f"GPU utilisation {util:.0f}%: could improve; a larger grid or width would use it better.")
        else:
            lines.append(f"GPU utilisation {util:.0f}%: low; raise the grid or width.")
    if res.ram_percent > 90:
        lines.append(f"RAM {res.ram_percent:.0f}% used: lower the grid or width before the system runs out.")
    if remaining_fraction is not None and remaining_fraction < 0.1:
        lines.append(f"Under 10% of the session budget left ({remaining_fraction:.0%}): the run will save and stop "
                     "soon; run the same command in the next session.")
    return lines
