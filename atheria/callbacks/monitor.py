"""The resource monitor: every few episodes, a short console block and the same figures sent to the loggers, so a
user who walked away can see whether the GPU is used well and when the session ends. A thin Lightning adapter
over ResourceReader and the BudgetClock."""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Optional

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from atheria.callbacks.budget_clock import BudgetClock
from atheria.callbacks.resources import ResourceReader, Resources, advice
from atheria.callbacks.session import hms


def format_block(episode: int, total: int, res: Resources, clock: BudgetClock,
                 episodes_per_min: Optional[float]) -> str:
    """The console block: GPU use and memory, RAM, budget time elapsed and left, pace, and advice lines."""
    if res.has_gpu:
        gpu = f"{res.gpu_util:.0f}% utilisation, {res.gpu_mem_used_gb:.1f} / {res.gpu_mem_total_gb:.1f} GB memory"
        if not math.isnan(res.torch_allocated_gb):
            gpu += f" (torch {res.torch_allocated_gb:.1f} GB allocated, {res.torch_reserved_gb:.1f} GB reserved)"
    else:
        gpu = "no figures (CPU run or NVML unavailable)"
    budget = clock.budget_s
    time_line = (f"{hms(clock.elapsed())} elapsed, {hms(clock.remaining())} remaining of {hms(budget)}"
                 if budget else f"{hms(clock.elapsed())} elapsed, no session budget")
    pace = f"; {episodes_per_min:.1f} episodes/min" if episodes_per_min else ""
    lines = [f"Resources at episode {episode}/{total}",
             f"  GPU   {gpu}",
             f"  RAM   {res.ram_used_gb:.1f} / {res.ram_total_gb:.1f} GB ({res.ram_percent:.0f}%); "
             f"this process {res.process_ram_gb:.1f} GB; CPU {res.cpu_percent:.0f}%",
             f"  Time  {time_line}{pace}"]
    remaining = clock.remaining()
    lines += [f"  Advice: {line}" for line in advice(res, remaining / budget if budget else None)]
    return "\n".join(lines)


class ResourceMonitor(Callback):
    """Reports resources at the first episode of each session (which also gives every session's metrics the same
    columns) and every `every` episodes after; never stops training."""

    def __init__(self, clock: BudgetClock, every: int, reader: Optional[ResourceReader] = None,
                 say: Callable[[str], None] = print) -> None:
        self.clock, self.every, self.reader, self.say = clock, every, reader, say
        self._session_t0 = 0.0
        self._session_step0 = 0
        self._last_episode: Optional[int] = None
        self._said_note: Optional[str] = None

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self.reader is None:
            self.reader = ResourceReader()
        self._session_t0, self._session_step0 = time.monotonic(), trainer.global_step
        self._last_episode = None

    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        episode = trainer.global_step
        first = self._last_episode is None
        if episode == self._last_episode or not (first or episode % self.every == 0):
            return
        self._last_episode = episode
        # Straight to the loggers: a value logged through pl_module.log in this hook is re-sent at every later step.
        figures = {"episode": float(episode), **self.figures(episode, trainer.max_steps)}
        for logger in trainer.loggers:
            logger.log_metrics(figures, step=episode - 1)  # the step Lightning logs this episode's training under

    def figures(self, episode: int, total: int) -> dict[str, float]:
        """Read the machine, print the block (and, once, why GPU figures are missing), return the logger figures."""
        assert self.reader is not None
        res = self.reader.read()
        if self.reader.gpu_note and self.reader.gpu_note != self._said_note:
            self._said_note = self.reader.gpu_note
            self.say(self.reader.gpu_note)
        minutes = (time.monotonic() - self._session_t0) / 60
        done = episode - self._session_step0
        per_min = done / minutes if done > 0 and minutes > 0 else None
        self.say(format_block(episode, total, res, self.clock, per_min))
        remaining = self.clock.remaining()
        return {**res.as_metrics(), "resources/elapsed_s": self.clock.elapsed(),
                "resources/remaining_s": math.nan if remaining is None else remaining,
                "resources/episodes_per_min": math.nan if per_min is None else per_min}
