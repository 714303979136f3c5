"""What the machine is doing, framework-neutral: GPU utilisation and memory (NVML, torch's allocator), RAM and CPU
(psutil), and the advice a user needs to size a run to the GPU they were given."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Optional

import psutil

from atheria.errors import one_line

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
    """Reads the first GPU through NVML and the system through psutil. `gpu_note`, said once, is the GPU's name, or
    why GPU figures are NaN (no CUDA, NVML failed); an NVML failure never reaches training."""

    def __init__(self, device_index: int = 0) -> None:
        import torch

        self.gpu_note: Optional[str] = None
        self._nvml: Any = None
        self._handle: Any = None
        if not torch.cuda.is_available():  # training is on the CPU: why NVML fails here would be noise
            self.gpu_note = "no GPU"
        else:
            try:
                import pynvml

                pynvml.nvmlInit()
                handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
                name = pynvml.nvmlDeviceGetName(handle)
                self._nvml, self._handle = pynvml, handle
                self.gpu_note = name.decode() if isinstance(name, bytes) else name  # bytes in older nvidia-ml-py
            except Exception as exc:  # library missing, no driver, no device: NVML fails in many ways, all the same
                self.gpu_note = f"no GPU figures (NVML unavailable: {one_line(exc, 120)})"
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
            self.gpu_note = f"GPU figures stopped (NVML failed: {one_line(exc, 120)})"
            return
        res.gpu_util = float(util.gpu)
        res.gpu_mem_used_gb, res.gpu_mem_total_gb = mem.used / GB, mem.total / GB

    @staticmethod
    def _read_torch(res: Resources) -> None:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            res.torch_allocated_gb = torch.cuda.memory_allocated() / GB
            res.torch_reserved_gb = torch.cuda.memory_reserved() / GB


def advice(res: Resources, remaining_fraction: Optional[float]) -> list[str]:
    """What to change, in a few words each (the figures are beside them): GPU under 80% or 50% busy, RAM over 90%,
    under 10% of the budget left; nothing when all is well."""
    lines = []
    if res.has_gpu and res.gpu_util < 50:
        lines.append("GPU mostly idle: raise the batch, grid or width")
    elif res.has_gpu and res.gpu_util < 80:
        lines.append("GPU could do more: a larger batch, grid or width")
    if res.ram_percent > 90:
        lines.append("RAM over 90%: lower the grid or width")
    if remaining_fraction is not None and remaining_fraction < 0.1:
        lines.append("under 10% of the budget left: the run saves and stops soon")
    return lines
