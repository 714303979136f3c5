"""Time real training episodes of a composed config on this machine, with the same module, data and Trainer
settings a run uses, so `atheria estimate` measures what training will do. The episodes run in a thread that
fills a Stopwatch, watched from the main thread, which prints progress and stops watching at a time cap or a
signal even inside a long episode."""
from __future__ import annotations

import logging
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Optional

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf

from atheria.families import build_datamodule, build_module, family_of
from atheria.tasks.train import build_trainer

WARMUP = 1  # the first episode pays for allocation and kernel selection; a run pays it once
BACKWARD = 2.0  # backward over forward time, to extrapolate a first episode from its forward steps alone
PROGRESS_S = 10  # a progress line at least this often while an episode runs


@dataclass
class Stopwatch:
    """What the training thread has measured so far (perf_counter times), read by the watching thread."""

    steps_per_episode: int  # QCA steps in an episode; 0 when the model has no law to time step by step
    begins: list[float] = field(default_factory=list)  # start of each episode
    ends: list[float] = field(default_factory=list)  # end of each episode, after the optimizer step
    steps: list[float] = field(default_factory=list)  # each law forward of the first episode (its first steps)
    device: str = "?"
    error: Optional[BaseException] = None
    done: threading.Event = field(default_factory=threading.Event)  # set when the thread ends (not Thread.join:
    # a signal handler raising inside join() marks a running thread as stopped, bpo-45274)

    def per_episode(self, now: float) -> tuple[Optional[float], str]:
        """Seconds per training episode from what was measured by `now`, and how it was obtained (None: nothing)."""
        done = len(self.ends)
        if done > WARMUP:
            return (self.ends[-1] - self.ends[0]) / (done - WARMUP), f"{done - WARMUP} timed episodes after the warm-up"
        if done:
            return (self.ends[0] - self.begins[0],
                    "the warm-up episode alone (it includes one-time start-up costs, so this errs long)")
        if not self.begins:
            return None, "nothing: the model was still being built"
        elapsed, steps = now - self.begins[0], self.steps[:self.steps_per_episode]
        if steps:
            forward = (steps[-1] - self.begins[0]) / len(steps)
            return (max(elapsed, forward * self.steps_per_episode * (1 + BACKWARD)),
                    f"{len(steps)} of {self.steps_per_episode} QCA steps of the first episode at {forward:.3g} s each "
                    f"(forward only), extrapolated to {self.steps_per_episode} steps x {1 + BACKWARD:g} "
                    f"(backward taken as {BACKWARD:g}x the forward)")
        return elapsed, f"a first episode unfinished after {elapsed:.3g} s (so at least that; a lower bound)"


class EpisodeClock(Callback):
    """Fills the Stopwatch: the device, each episode's start and end (on a GPU after a synchronize), each law step."""

    def __init__(self, watch: Stopwatch) -> None:
        self.watch = watch

    def on_fit_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self.watch.device = str(trainer.strategy.root_device)
        law = getattr(pl_module, "law", None)
        if law is not None and self.watch.steps_per_episode:
            law.register_forward_hook(lambda *_: self._step())

    def _step(self) -> None:
        if not self.watch.ends and len(self.watch.steps) < self.watch.steps_per_episode:
            self.watch.steps.append(time.perf_counter())

    def on_train_batch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", batch: Any,
                             batch_idx: int) -> None:
        self.watch.begins.append(time.perf_counter())

    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.watch.ends.append(time.perf_counter())


def _fit(cfg: DictConfig, episodes: int, watch: Stopwatch) -> None:
    """Train WARMUP + episodes episodes quietly, recording into `watch` (an exception is kept there)."""
    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    lightning_log.setLevel(logging.ERROR)
    try:
        pl.seed_everything(cfg.seed, verbose=False)
        cfg = cfg.copy()
        OmegaConf.update(cfg, "run.eval_episodes", 0)  # no held-out episodes: the trivial baselines are not timed
        module, data = build_module(cfg), build_datamodule(cfg)
        data.setup("fit")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Lightning's start-up advice is noise in a measurement
            trainer = build_trainer(cfg, WARMUP + episodes, [EpisodeClock(watch)], logger=False,
                                    enable_checkpointing=False, enable_progress_bar=False)
            trainer.fit(module, datamodule=data)
    except BaseException as exc:  # the watching thread reports it
        watch.error = exc
    finally:
        lightning_log.setLevel(level)
        watch.done.set()


def start_timing(cfg: DictConfig, episodes: int) -> Stopwatch:
    """Start timing WARMUP + episodes episodes in a daemon thread; the Stopwatch fills as they run."""
    watch = Stopwatch(family_of(cfg).law_steps(cfg))
    threading.Thread(target=_fit, args=(cfg, episodes, watch), name="atheria-estimate", daemon=True).start()
    return watch


class Signalled(Exception):
    """SIGINT or SIGTERM while timing: estimate from what was measured, then exit 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_signal(signum: int, frame: Any) -> None:
    raise Signalled(signum)


def _label(i: int, episodes: int) -> str:
    return "warm-up episode" if i == 0 else f"episode {i} of {episodes}"


def finished_lines(watch: Stopwatch, shown: int, episodes: int) -> tuple[list[str], int]:
    """Lines for the episodes finished after the first `shown` (the warm-up alone, the rest together), and how
    many episodes are now shown."""
    ends, lines = list(watch.ends), []
    if shown == 0 and ends:
        lines.append(f"  warm-up episode: {ends[0] - watch.begins[0]:.3g} s")
        shown = 1
    if len(ends) > shown:
        count, each = len(ends) - shown, (ends[-1] - ends[shown - 1]) / (len(ends) - shown)
        which = _label(shown, episodes) if count == 1 else f"episodes {shown}-{len(ends) - 1} of {episodes}"
        lines.append(f"  {which}: {each:.3g} s{' each' if count > 1 else ''}")
    return lines, len(ends)


def running_line(watch: Stopwatch, episodes: int, now: float) -> Optional[str]:
    """How far the episode under way has got, or None between episodes."""
    i = len(watch.ends)
    if len(watch.begins) <= i:
        return None
    steps = f"{len(watch.steps)} of {watch.steps_per_episode} QCA steps forward, " if i == 0 and watch.steps else ""
    return f"  {_label(i, episodes)}: {steps}{now - watch.begins[i]:.0f} s so far"


def watch_until_done(watch: Stopwatch, episodes: int, max_seconds: float) -> tuple[str, int]:
    """Print progress until the timing thread is done, --max-seconds pass, or SIGINT/SIGTERM arrives: (why it
    stopped early or "", the exit code)."""
    start = said = time.perf_counter()
    shown, stopped, code = 0, "", 0
    previous = {signum: signal.signal(signum, _raise_signal) for signum in (signal.SIGINT, signal.SIGTERM)
                if signal.getsignal(signum) is not signal.SIG_IGN}  # an ignored signal (nohup, `&`) stays ignored
    try:
        while not watch.done.wait(timeout=0.5):
            now, lines = time.perf_counter(), []
            if len(watch.ends) > shown and now - said >= 1:  # at most a line a second, however short the episodes
                lines, shown = finished_lines(watch, shown, episodes)
            elif now - said >= PROGRESS_S:
                lines = [line for line in [running_line(watch, episodes, now)] if line]
            if lines:
                print("\n".join(lines), flush=True)
                said = now
            if now - start >= max_seconds:
                stopped = f"Stopped at the {max_seconds:g} s cap (--max-seconds)"
                break
    except Signalled as sig:
        stopped, code = f"Interrupted by {sig}", 128 + sig.signum
    finally:  # while the thread runs, the process is about to leave: a second signal must not interrupt that
        for signum, handler in previous.items():
            signal.signal(signum, handler if watch.done.is_set() else signal.SIG_IGN)
    lines, _ = finished_lines(watch, shown, episodes)
    if lines:
        print("\n".join(lines))
    return (f"{stopped} after {time.perf_counter() - start:.0f} s" if stopped else ""), code
