"""Logger configs are keyed by name: the CSV history is always on, and logger=[wandb,tensorboard] adds both; W&B is
found by its key."""
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
