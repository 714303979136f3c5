"""Logger configs are keyed by name: the CSV history is always on, and logger=[wandb,tensorboard] adds both; W&B is
found by its key; the CSV history takes a row written ahead of Lightning without doubling it."""
import csv
import math
from pathlib import Path

import pytest
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

from atheria.loggers import HistoryCSVLogger, build_loggers, check_wandb_login
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
    assert [type(lg) for lg in loggers] == [HistoryCSVLogger, WandbLogger, TensorBoardLogger]
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


def test_a_row_written_ahead_is_not_written_again_by_lightning(tmp_path):
    logger = HistoryCSVLogger(save_dir=tmp_path, name="exp", version="")
    logger.log_metrics({"episode": 1.0, "resources/ram_used_gb": 1.5}, step=0)  # buffered, as the monitor's row is
    logger.log_ahead({"episode": 1.0, "train/loss": math.nan, "epoch": 0}, step=0)
    assert [r["train/loss"] for r in _rows(tmp_path)] == ["", "nan"]  # on disk, with the buffered row
    logger.log_metrics({"episode": 1.0, "train/loss": math.nan, "epoch": 0}, step=0)  # Lightning's own call
    logger.log_metrics({"episode": 1.0, "val/loss": 2.0, "epoch": 0}, step=0)  # another row of the same step
    logger.sync()
    logger.save()
    assert [(r["step"], r["train/loss"], r["val/loss"]) for r in _rows(tmp_path)] == [
        ("0", "", ""), ("0", "nan", ""), ("0", "", "2.0")]
