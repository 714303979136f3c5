"""Held-out evaluation at checkpoint saves, off the training thread on an accelerator (one process): a copy of the
law as of a save's episode is scored on a background thread while training goes on, and the checkpoint saved there
is ranked once its figures arrive. On the CPU, and under DDP, it runs at its save, on the training thread: on the
CPU a second thread only competes for the same cores (bench/evaluation.py measures both); under DDP the ranks rank
each checkpoint together. Lightning's validation loop runs on the training
thread, after every on_train_batch_end hook, so a ModelCheckpoint ranking by a validation metric would both wait for
it and score each checkpoint by the previous evaluation; and a value logged with `self.log` from a hook is repeated
in every later row of the epoch, so the figures go to the loggers directly, once, at their episode."""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Optional

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from atheria.callbacks.history import EpisodeHistory
from atheria.loggers import log_rows

Scores = dict[str, float]


def in_background(device: torch.device, processes: int) -> bool:
    """Whether an evaluation runs beside training: on an accelerator, in a run of one process. Under DDP every rank
    ranks a checkpoint in step with the others (Lightning's top-k decision is a collective): figures arriving at
    different episodes on different ranks would leave them waiting on each other."""
    return device.type != "cpu" and processes == 1


class HeldOutEvaluation(Callback):
    """At the first checkpoint save (every `save_every` episodes) at or past each multiple of `every` episodes, takes
    the module's `evaluator()` (a function scoring a copy of the law as it is now: metric name -> float) and runs it
    on a background thread, one at a time (`background`: None when `in_background`, else always or never).
    `finished(trainer)` hands the figures that have arrived, each logged at its episode and noted in the run's
    history, to the checkpoint callback that ranks the checkpoint saved there (`evaluating(step)`: an evaluation of
    that episode was started and not yet handed over). A stop and the end of training wait for the evaluation in
    flight; an exception drops it."""

    def __init__(self, every: int, save_every: int, history: EpisodeHistory, background: Optional[bool] = None) -> None:
        self.every, self.save_every, self.history = every, save_every, history
        self.background = background
        self.last = 0
        self._pool: Optional[ThreadPoolExecutor] = None
        self._running: Optional[tuple[int, Future[Scores]]] = None
        self._arrived: list[tuple[int, Scores]] = []

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.last = trainer.global_step

    def evaluating(self, step: int) -> bool:
        """Whether episode `step` was evaluated (or is being), its figures not yet handed over by `finished`."""
        return (self._running is not None and self._running[0] == step) or any(s == step for s, _ in self._arrived)

    def finished(self, trainer: pl.Trainer, wait: bool = False) -> list[tuple[int, Scores]]:
        """The (episode, figures) that arrived since the last call (with `wait`, the one in flight too)."""
        self._collect(trainer, wait)
        arrived, self._arrived = self._arrived, []
        return arrived

    def _collect(self, trainer: pl.Trainer, wait: bool) -> None:
        if self._running is None or not (wait or self._running[1].done()):
            return
        (step, future), self._running = self._running, None
        scores = future.result()  # an evaluation that failed ends the run here, on the training thread
        self.history.record(step, scores)
        log_rows(trainer, [(step, scores)])
        self._arrived.append((step, scores))

    def _start(self, step: int, evaluate: Callable[[], Scores], device: torch.device, processes: int) -> None:
        if not (self.background if self.background is not None else in_background(device, processes)):
            done: Future[Scores] = Future()
            done.set_result(evaluate())
            self._running = (step, done)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="atheria-evaluation")
        self._running = (step, self._pool.submit(evaluate))

    @override
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = trainer.global_step
        if step % self.save_every == 0 and step // self.every > self.last // self.every:
            self._collect(trainer, wait=True)  # one at a time: the one before is done long since, as a rule
            self.last = step
            self._start(step, pl_module.evaluator(), pl_module.device, trainer.world_size)  # type: ignore[operator]

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._collect(trainer, wait=True)  # before the plots and the report that show it, and the final ranking

    @override
    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._running = None
        self._close(wait=False)

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._close(wait=True)

    def _close(self, wait: bool) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None
