"""Where metrics go: the configured Lightning loggers, made to continue an experiment across sessions."""
from __future__ import annotations

import csv
import secrets
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from omegaconf import DictConfig

from atheria.sweeps import sweep_id


class _AppendingWriter(ExperimentWriter):
    """Lightning's writer deletes an existing metrics.csv on start; a resumed experiment must keep its history,
    with the columns it already has (a session may log fewer metrics than the one before)."""

    def __init__(self, log_dir: str) -> None:
        super().__init__(log_dir)
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                self.metrics_keys = sorted(next(csv.reader(f), []))

    def _check_log_dir_exists(self) -> None:
        return None


class HistoryCSVLogger(CSVLogger):
    """CSVLogger that appends to the experiment's metrics.csv instead of replacing it."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def build_loggers(cfg: DictConfig, logs_dir: str) -> list[Any]:
    """The loggers of `cfg.logger`; W&B gets the experiment's stored run id, so one experiment is one W&B run."""
    from hydra.utils import instantiate

    loggers = []
    for item in cfg.logger:
        extra = {}
        if str(item.get("_target_", "")).endswith("WandbLogger"):
            id_file = Path(logs_dir) / "wandb_id.txt"
            if not id_file.exists():
                id_file.write_text(secrets.token_hex(8))
            extra = {"id": id_file.read_text().strip(), "resume": "allow"}
            if sweep_id():
                extra["group"] = sweep_id()  # the jobs of one sweep, grouped in W&B
        loggers.append(instantiate(item, **extra))
    return loggers
