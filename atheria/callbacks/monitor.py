"""The resource monitor: every few episodes, one console line and the full figures sent to the loggers, so a user
who walked away can see whether the GPU is used well and when the session ends. A thin Lightning adapter
over ResourceReader and the BudgetClock."""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Optional

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from atheria.loggers import log_rows
from atheria.observe.durations import hms
from atheria.observe.resources import ResourceReader, Resources, advice
from atheria.session.clock import BudgetClock


def format_line(episode: int, total: int, res: Resources, clock: BudgetClock, episodes_per_min: Optional[float],
                note: Optional[str] = None) -> str:
    """The console line: episode, `note` (the GPU's name or why its figures are missing, said once), GPU use and
    memory, RAM, this process, CPU, session time (and what is left of the budget), pace, and advice."""
    parts = [f"ep {episode}/{total}", *([note] if note else [])]
    if res.has_gpu:
        torch_part = "" if math.isnan(res.torch_allocated_gb) else f" (torch {res.torch_allocated_gb:.1f} GB)"
        parts.append(f"GPU {res.gpu_util:.0f}%, {res.gpu_mem_used_gb:.1f}/{res.gpu_mem_total_gb:.1f} GB{torch_part}")
    parts += [f"RAM {res.ram_used_gb:.1f}/{res.ram_total_gb:.1f} GB", f"proc {res.process_ram_gb:.1f} GB",
              f"CPU {res.cpu_percent:.0f}%"]
    budget, remaining = clock.budget_s, clock.remaining()
    parts.append(f"{hms(clock.elapsed())} elapsed" + (f", {hms(remaining)} left of {hms(budget)}" if budget else ""))
    if episodes_per_min:
        parts.append(f"{episodes_per_min:.1f} ep/min")
    parts += advice(res, remaining / budget if budget and remaining is not None else None)
    return " · ".join(parts)


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

    @override
    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self.reader is None:
            self.reader = ResourceReader()
        self._session_t0, self._session_step0 = time.monotonic(), trainer.global_step
        self._last_episode = None

    @override
    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        episode = trainer.global_step
        first = self._last_episode is None
        if episode == self._last_episode or not (first or episode % self.every == 0):
            return
        self._last_episode = episode
        # Straight to the loggers: a value logged through pl_module.log in this hook is re-sent at every later step.
        log_rows(trainer, [(episode, self.figures(episode, trainer.max_steps))])

    def figures(self, episode: int, total: int) -> dict[str, float]:
        """Read the machine, print its line (with the reader's GPU note when new), return the logger figures."""
        assert self.reader is not None
        res = self.reader.read()
        note = self.reader.gpu_note if self.reader.gpu_note != self._said_note else None
        self._said_note = self.reader.gpu_note
        minutes = (time.monotonic() - self._session_t0) / 60
        done = episode - self._session_step0
        per_min = done / minutes if done > 0 and minutes > 0 else None
        self.say(format_line(episode, total, res, self.clock, per_min, note))
        remaining = self.clock.remaining()
        return {**res.as_metrics(), "resources/elapsed_s": self.clock.elapsed(),
                "resources/remaining_s": math.nan if remaining is None else remaining,
                "resources/episodes_per_min": math.nan if per_min is None else per_min}
