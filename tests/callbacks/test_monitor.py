"""The resource monitor: real psutil figures, no CUDA (this machine's real state) and NVML present but failing
(monkeypatched, since no GPU is here), its console line and advice, and its cadence through Lightning's logging."""
import math
from types import SimpleNamespace

import psutil
import pynvml
import pytest
import torch

from atheria.callbacks.monitor import ResourceMonitor, format_line
from atheria.observe.resources import GB, ResourceReader, Resources, advice
from atheria.session.clock import BudgetClock

KEYS = {"resources/gpu_util", "resources/gpu_mem_used_gb", "resources/gpu_mem_total_gb",
        "resources/torch_allocated_gb", "resources/torch_reserved_gb", "resources/process_ram_gb",
        "resources/ram_used_gb", "resources/ram_total_gb", "resources/ram_percent", "resources/cpu_percent",
        "resources/elapsed_s", "resources/remaining_s", "resources/episodes_per_min"}


class FakeTime:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeLogger:
    def __init__(self) -> None:
        self.logged: list[tuple[int, dict[str, float]]] = []

    def log_metrics(self, metrics: dict, step: int) -> None:
        self.logged.append((step, metrics))


def test_no_cuda_says_no_gpu_once_and_logs_cpu_and_ram_figures():
    said: list[str] = []
    reader = ResourceReader()
    assert reader.gpu_note == "no GPU"  # no CUDA on this machine
    monitor = ResourceMonitor(BudgetClock(None), every=10, reader=reader, say=said.append)
    monitor.on_train_start(SimpleNamespace(global_step=0), None)
    first, second = monitor.figures(1, 100), monitor.figures(10, 100)
    assert said[0].startswith("ep 1/100 · no GPU · RAM ") and said[1].startswith("ep 10/100 · RAM ")
    assert set(first) == set(second) == KEYS
    assert math.isnan(first["resources/gpu_util"]) and math.isnan(first["resources/remaining_s"])
    assert first["resources/ram_total_gb"] == pytest.approx(psutil.virtual_memory().total / GB)
    assert 0 < first["resources/process_ram_gb"] < first["resources/ram_used_gb"] <= first["resources/ram_total_gb"]
    assert len(said) == 2 and " elapsed" in said[-1] and " left" not in said[-1]  # no budget, no time left


def _fake_nvml(monkeypatch, utilisation):
    """CUDA, and NVML that initialises and finds a device, whose utilisation query runs `utilisation()`."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(pynvml, "nvmlInit", lambda: None)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByIndex", lambda index: "gpu0")
    monkeypatch.setattr(pynvml, "nvmlDeviceGetName", lambda handle: b"Tesla T4")
    monkeypatch.setattr(pynvml, "nvmlDeviceGetUtilizationRates", lambda handle: utilisation())
    monkeypatch.setattr(pynvml, "nvmlDeviceGetMemoryInfo",
                        lambda handle: SimpleNamespace(used=3 * GB, total=15 * GB))


def test_nvml_present_then_failing_mid_run_keeps_cpu_figures_and_says_why(monkeypatch):
    answers = iter([SimpleNamespace(gpu=85)])

    def utilisation():
        try:
            return next(answers)
        except StopIteration:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST) from None

    _fake_nvml(monkeypatch, utilisation)
    reader = ResourceReader()
    assert reader.gpu_note == "Tesla T4"  # said once, in the first report
    ok = reader.read()
    assert (ok.gpu_util, ok.gpu_mem_used_gb, ok.gpu_mem_total_gb) == (85.0, 3.0, 15.0)
    lost = reader.read()
    assert not lost.has_gpu and lost.ram_total_gb > 0
    assert "NVML failed" in reader.gpu_note and "lost" in reader.gpu_note.lower()
    assert not reader.read().has_gpu  # it stops asking a failed driver


def test_nvml_init_failing_leaves_gpu_figures_out(monkeypatch):
    def refuse():
        raise pynvml.NVMLError(pynvml.NVML_ERROR_DRIVER_NOT_LOADED)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(pynvml, "nvmlInit", refuse)
    reader = ResourceReader()
    assert reader.gpu_note == "no GPU figures (NVML unavailable: Driver Not Loaded)" and not reader.read().has_gpu


@pytest.mark.parametrize("util, words", [(95, None), (80, None), (65, "could do more"), (30, "mostly idle")])
def test_gpu_utilisation_advice_bands(util, words):
    lines = advice(Resources(gpu_util=util, ram_percent=40), remaining_fraction=0.5)
    assert lines == [] if words is None else len(lines) == 1 and words in lines[0]


def test_ram_and_budget_advice():
    assert advice(Resources(ram_percent=40), None) == []
    assert "lower the grid or width" in advice(Resources(ram_percent=93), None)[0]
    assert "under 10% of the budget left" in advice(Resources(ram_percent=40), 0.05)[0]


def test_line_shows_gpu_memory_ram_budget_time_and_advice():
    clock = BudgetClock(1.0, start=0.0, now=FakeTime(900.0))
    res = Resources(gpu_util=42, gpu_mem_used_gb=3.2, gpu_mem_total_gb=15.0, torch_allocated_gb=2.1,
                    process_ram_gb=2.3, ram_used_gb=5.1, ram_total_gb=12.7, ram_percent=40.2, cpu_percent=95)
    assert format_line(20, 100, res, clock, 4.25) == (
        "ep 20/100 · GPU 42%, 3.2/15.0 GB (torch 2.1 GB) · RAM 5.1/12.7 GB · proc 2.3 GB · CPU 95% · "
        "0:15:00 elapsed, 0:45:00 left of 1:00:00 · 4.2 ep/min · GPU mostly idle: raise the batch, grid or width")


def test_reports_at_the_first_episode_of_a_session_then_every_n_to_every_logger():
    loggers, said = [FakeLogger(), FakeLogger()], []
    monitor = ResourceMonitor(BudgetClock(2.0), every=10, reader=ResourceReader(), say=said.append)
    trainer = SimpleNamespace(global_step=37, max_steps=100, loggers=loggers, is_global_zero=True)
    monitor.on_train_start(trainer, None)
    for step in range(38, 61):
        trainer.global_step = step
        monitor.on_train_batch_end(trainer, None, None, None, 0)
        monitor.on_train_batch_end(trainer, None, None, None, 0)  # a second micro-batch of the same episode
    reported = [int(line.split("/")[0].removeprefix("ep ")) for line in said]
    assert reported == [38, 40, 50, 60]
    for logger in loggers:  # under the step Lightning gives each episode's training metrics (episode - 1)
        assert [(step, m["episode"]) for step, m in logger.logged] == [(37, 38), (39, 40), (49, 50), (59, 60)]
        assert all(set(m) == KEYS | {"episode"} and m["resources/remaining_s"] > 0 for _, m in logger.logged)
