"""A training session built the way atheria.runner builds one (callbacks, loggers, module, data, Trainer), in this
process so that a comparison measures the framework and not Python's start-up, timed episode by episode."""
from __future__ import annotations

import contextlib
import logging
import time
import warnings
from pathlib import Path
from typing import Any, Optional

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig

from atheria.callbacks import build_callbacks
from atheria.families import build_datamodule, build_module
from atheria.loggers import build_loggers
from atheria.storage.layout import Layout
from atheria.tasks import check
from atheria.tasks.train import build_trainer, callback_settings


class EpisodeTimer(Callback):
    """Notes when each episode starts (first of all hooks, so an interval holds every hook of the episode before)."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self.starts.append(time.perf_counter())

    def intervals(self) -> list[float]:
        """Seconds of each episode, start to next start (every hook included), from the second episode to the one
        before last (the first is warm-up; the last carries the end of the session)."""
        return [b - a for a, b in zip(self.starts[1:-1], self.starts[2:])]


def train_session(cfg: DictConfig, log: Path, first: Optional[Callback] = None) -> EpisodeTimer:
    """Fit `cfg` from scratch with every default callback, its output in `log`; the timer of its episodes.
    `first` runs before every other callback."""
    check(cfg)
    local = Layout(cfg.storage.local, cfg.name)
    remote = Layout(cfg.storage.remote, cfg.name) if cfg.storage.remote else None
    Path(local.logs).mkdir(parents=True, exist_ok=True)
    timer = EpisodeTimer()
    for name in ("lightning.pytorch", "lightning.fabric"):  # its once-a-session notices, not errors
        logging.getLogger(name).setLevel(logging.WARNING)
    with open(log, "a") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pl.seed_everything(cfg.seed, verbose=False)
        module = build_module(cfg)
        data = build_datamodule(cfg)
        data.setup("fit")
        total = cfg.run.total_episodes
        machinery = build_callbacks(callback_settings(cfg), local, remote, total)
        trainer = build_trainer(cfg, total, [*([first] if first else []), timer, *machinery.callbacks],
                                logger=build_loggers(cfg, local.logs), plugins=machinery.plugins)
        try:
            trainer.fit(module, datamodule=data)
        finally:
            if machinery.mirror:
                machinery.mirror.close(timeout=5)
    return timer
