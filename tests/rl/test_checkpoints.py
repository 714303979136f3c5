"""SchedulerCheckpoints: last.ckpt after an evaluation that kept its checkpoint is that file, not a second write."""
import os

import torch

from atheria.rl.checkpoints import SchedulerCheckpoints
from atheria.session.clock import BudgetClock
from atheria.session.shelf import Shelf
from atheria.storage.layout import Layout
from tests.helpers import load


def ckpt(step):
    return {"global_step": step, "agent": {"w": torch.full((3,), float(step))}, "evaluation": {"reward": 0.0}}


def test_last_links_to_the_kept_evaluation_of_its_step_and_is_its_own_file_otherwise(tmp_path):
    local = Layout(str(tmp_path), "RL")
    checkpoints = SchedulerCheckpoints(Shelf(local, BudgetClock(None)), keep_best=1)
    checkpoints.open(0)
    checkpoints.offer_best(ckpt(16), 1.0)
    checkpoints.save_last(ckpt(16))
    folder = tmp_path / "checkpoints" / "RL"
    assert os.path.samefile(folder / "last.ckpt", folder / "step00000016.ckpt")
    checkpoints.offer_best(ckpt(32), 0.5)  # not among the best 1: not kept
    checkpoints.save_last(ckpt(32))
    assert load(folder / "last.ckpt")["global_step"] == 32 and os.stat(folder / "last.ckpt").st_nlink == 1
    assert sorted(p.name for p in folder.glob("*.ckpt")) == ["last.ckpt", "step00000016.ckpt"]
    assert load(folder / "step00000016.ckpt")["global_step"] == 16
