"""Time real training episodes of a composed config on this machine, with the same module, data and Trainer
settings a run uses, so `atheria estimate` measures what training will do."""
from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig

from atheria.modules import build_datamodule, build_module

WARMUP = 1  # the first episode pays for allocation and kernel selection; a run pays it once


class EpisodeClock(Callback):
    """Wall time at the end of every episode (after the optimizer step; on a GPU after a synchronize)."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.ends.append(time.perf_counter())


def time_episodes(cfg: DictConfig, episodes: int) -> tuple[float, str]:
    """Mean seconds per training episode (forward, backward, optimizer step) after the warm-up, and the device."""
    pl.seed_everything(cfg.seed, verbose=False)
    module = build_module(cfg)
    data = build_datamodule(cfg)
    data.setup("fit")
    clock = EpisodeClock()
    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    lightning_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Lightning's start-up advice is noise in a measurement
            trainer = instantiate(cfg.trainer, max_steps=WARMUP + episodes, callbacks=[clock], logger=False,
                                  enable_checkpointing=False, enable_progress_bar=False)
            trainer.fit(module, datamodule=data)
    finally:
        lightning_log.setLevel(level)
    ends = clock.ends[WARMUP - 1:]
    return (ends[-1] - ends[0]) / (len(ends) - 1), str(trainer.strategy.root_device)
