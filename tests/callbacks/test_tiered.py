"""TieredCheckpoint's local tier: last.ckpt of a cadence save is the same file, not a second write of it."""
import json
import os

from atheria.storage.atomic import sha256_file
from tests.helpers import load, train_in_process

NAME = "UNET_8ch_D4"


def checkpoints(root, *overrides):
    """Run the tiny default (6 episodes, a save every 2) and return its checkpoint dir."""
    assert train_in_process(root, "run.total_episodes=6", *overrides) == 0
    return root / "checkpoints" / NAME


def test_last_is_a_hard_link_to_the_cadence_checkpoint_of_its_episode(tmp_path):
    ckpts = checkpoints(tmp_path / "out")
    assert sorted(p.name for p in ckpts.glob("ep*.ckpt")) == ["ep000002.ckpt", "ep000004.ckpt", "ep000006.ckpt"]
    assert os.path.samefile(ckpts / "last.ckpt", ckpts / "ep000006.ckpt")
    assert os.stat(ckpts / "ep000004.ckpt").st_nlink == 1  # last.ckpt moved on to episode 6's file
    manifest = json.loads((ckpts / "latest.json").read_text())
    assert manifest["files"]["last.ckpt"] == {**manifest["files"]["ep000006.ckpt"], "step": 6}
    assert manifest["files"]["last.ckpt"]["sha256"] == sha256_file(ckpts / "last.ckpt")
    assert not [p.name for p in ckpts.iterdir() if p.name.startswith(".") and p.name != ".lock"]


def test_an_episode_whose_cadence_file_is_not_among_the_best_still_gets_its_own_last(tmp_path):
    ckpts = checkpoints(tmp_path / "out", "run.keep_best=1")  # seed 42: the loss of episode 6 is not the best
    assert [p.name for p in ckpts.glob("ep*.ckpt")] == ["ep000004.ckpt"]
    assert load(ckpts / "last.ckpt")["global_step"] == 6  # not a stale link to episode 4's file
    assert not os.path.samefile(ckpts / "last.ckpt", ckpts / "ep000004.ckpt")
