"""Logger configs are keyed by name: the CSV history is always on, and logger=[wandb,tensorboard] adds both; W&B is
found by its key; rows handed to the loggers reach metrics.csv, fsynced, when a checkpoint's save syncs them."""
import csv
import math
from pathlib import Path

import pytest
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import TensorBoardLogger

from atheria.loggers import AtheriaWandbLogger, HistoryCSVLogger, build_loggers, check_wandb_login, log_rows, sync_rows
from tests.helpers import compose_cfg as composed


@pytest.mark.parametrize("choice,keys", [("csv", ["csv"]), ("wandb", ["csv", "wandb"]),
                                         ("tensorboard", ["csv", "tensorboard"]),
                                         ("[wandb,tensorboard]", ["csv", "wandb", "tensorboard"])])
def test_each_choice_adds_its_loggers_to_the_csv_history(choice, keys):
    assert list(composed(f"logger={choice}").logger) == keys


def test_wandb_and_tensorboard_combine_and_wandb_keeps_the_experiments_run_id(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = composed("logger=[wandb,tensorboard]", f"storage.local={tmp_path}", "platform=local")
    logs = tmp_path / "logs" / cfg.name
    logs.mkdir(parents=True)
    loggers = build_loggers(cfg, str(logs))
    assert [type(lg) for lg in loggers] == [HistoryCSVLogger, AtheriaWandbLogger, TensorBoardLogger]
    csv, wandb, tensorboard = loggers
    assert Path(csv.log_dir) == logs and Path(tensorboard.log_dir) == logs / "tensorboard"
    run_id = (logs / "wandb_id.txt").read_text()
    assert wandb.version == run_id and wandb._wandb_init["resume"] == "allow"
    assert [lg.version for lg in build_loggers(cfg, str(logs))][1] == run_id  # the next session: the same W&B run
    check_wandb_login(cfg.logger)  # offline: no login needed


def test_the_login_check_looks_only_at_the_wandb_key():
    check_wandb_login(composed("logger=tensorboard").logger)  # no W&B: nothing to check, wandb not consulted
    check_wandb_login(composed("logger=wandb", "+logger.wandb.offline=true").logger)


def _rows(save_dir):
    with open(save_dir / "exp" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_rows_handed_over_reach_the_file_at_the_next_sync_under_their_episodes_step(tmp_path):
    logger = HistoryCSVLogger(save_dir=tmp_path, name="exp", version="")
    trainer = Trainer(logger=logger, enable_checkpointing=False, enable_progress_bar=False)
    logger.log_metrics({"episode": 1.0, "resources/ram_used_gb": 1.5}, step=0)
    log_rows(trainer, [(1, {"train/loss": math.nan}), (2, {"train/loss": 0.5, "train/symmetry": 0.25})])
    assert not (tmp_path / "exp" / "metrics.csv").exists()  # buffered: the training thread writes no file
    sync_rows(trainer)  # what a checkpoint's save does first, on its write queue
    assert [(r["step"], r["episode"], r["train/loss"], r["train/symmetry"]) for r in _rows(tmp_path)] == [
        ("0", "1.0", "", ""), ("0", "1.0", "nan", ""), ("1", "2.0", "0.5", "0.25")]
