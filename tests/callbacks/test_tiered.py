"""TieredCheckpoint's local tier: last.ckpt of a cadence save is the same file, not a second write of it; files are
written off the training thread, each the state at its save, and latest.json names only files already whole."""
import csv
import json
import os
import threading
import time

import pytest
import torch

from atheria.callbacks import tiered
from atheria.callbacks.tiered import AtomicCheckpointIO
from atheria.storage.atomic import sha256_file
from atheria.storage.writes import WriteQueue
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


# --- writes off the training thread -----------------------------------------------------------------------------
def test_a_checkpoint_is_the_state_at_its_save_and_a_removal_waits_for_the_write_before_it(tmp_path):
    queue, gate = WriteQueue(), threading.Event()
    io = AtomicCheckpointIO(queue)
    queue.submit(gate.wait)  # the disk is slow: nothing below is written yet
    weights = torch.zeros(3)
    io.save_checkpoint({"w": weights}, tmp_path / "a.ckpt")
    io.remove_checkpoint(tmp_path / "a.ckpt")
    weights.add_(1)  # training goes on while the write waits
    second = threading.Thread(target=io.save_checkpoint, args=({"w": weights}, tmp_path / "b.ckpt"))
    second.start()
    second.join(timeout=0.5)
    assert second.is_alive()  # one checkpoint serialised and unwritten: the next save waits for the disk
    assert list(tmp_path.iterdir()) == []
    gate.set()
    second.join(timeout=10)
    weights.add_(1)
    io.save_checkpoint({"w": weights}, tmp_path / "c.ckpt")
    queue.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.ckpt", "c.ckpt"]  # a.ckpt written, then removed
    assert load(tmp_path / "b.ckpt")["w"].tolist() == [1] * 3 and load(tmp_path / "c.ckpt")["w"].tolist() == [2] * 3


def test_a_save_after_a_failed_write_raises_its_error_instead_of_waiting_forever(tmp_path):
    def full_disk():
        raise OSError(28, "No space left on device")

    queue, gate, raised = WriteQueue(), threading.Event(), []
    io = AtomicCheckpointIO(queue)
    queue.submit(gate.wait)
    queue.submit(full_disk)
    io.save_checkpoint({"w": torch.zeros(3)}, tmp_path / "a.ckpt")  # queued behind the failure: never written
    gate.set()

    def save_again():
        with pytest.raises(OSError, match="No space left"):
            io.save_checkpoint({"w": torch.ones(3)}, tmp_path / "b.ckpt")
        raised.append(True)

    again = threading.Thread(target=save_again, daemon=True)
    again.start()
    again.join(timeout=10)
    assert raised == [True] and list(tmp_path.iterdir()) == []


def test_a_save_begins_only_once_the_save_before_it_is_linked_as_last_and_published(tmp_path, monkeypatch):
    ckpts, seen = tmp_path / "out" / "checkpoints" / NAME, []

    def slow_link(src, dst):  # a slow disk between the write of a save and its last.ckpt
        time.sleep(0.3)
        link(src, dst)

    def serialise(checkpoint):  # on the training thread, at each save: what a kill now would resume from
        last, latest = ckpts / "last.ckpt", ckpts / "latest.json"
        seen.append((checkpoint["global_step"], load(last)["global_step"] if last.exists() else None,
                     json.loads(latest.read_text())["step"] if latest.exists() else None))
        return torch_bytes(checkpoint)

    link, torch_bytes = tiered._link_or_copy, tiered.torch_bytes
    monkeypatch.setattr(tiered, "_link_or_copy", slow_link)
    monkeypatch.setattr(tiered, "torch_bytes", serialise)
    checkpoints(tmp_path / "out")
    assert seen == [(2, None, None), (4, 2, 2), (6, 4, 4)]


def test_latest_json_never_names_a_file_not_yet_written_whole(tmp_path, monkeypatch):
    ckpts, seen, wrong = tmp_path / "out" / "checkpoints" / NAME, [], []

    def slow_write(path, data):  # a slow disk; the queue waits here, so the files on disk hold still
        name = os.path.basename(path)
        if (ckpts / "latest.json").exists():
            manifest = json.loads((ckpts / "latest.json").read_text())
            seen.append(manifest["step"])
            if name.startswith("ep") and manifest["step"] >= int(name[2:8]):
                wrong.append(f"latest.json at episode {manifest['step']} before {name} is written")
            wrong.extend(f"{n} is not what latest.json says" for n, e in manifest["files"].items()
                         if not (ckpts / n).is_file() or sha256_file(ckpts / n) != e["sha256"])
        time.sleep(0.05)
        write(path, data)

    write = tiered.write_bytes_atomic
    monkeypatch.setattr(tiered, "write_bytes_atomic", slow_write)
    ckpts = checkpoints(tmp_path / "out", "run.total_episodes=10", "run.keep_best=2")
    assert wrong == [] and len(seen) >= 3 and seen == sorted(seen)
    manifest = json.loads((ckpts / "latest.json").read_text())
    assert manifest["step"] == 10 and load(ckpts / "last.ckpt")["global_step"] == 10
    assert {n: e["sha256"] for n, e in manifest["files"].items()} == {
        n: sha256_file(ckpts / n) for n in manifest["files"]}
    assert sorted(p.name for p in ckpts.iterdir() if p.suffix == ".ckpt") == sorted(manifest["files"])


def test_a_resume_ranks_the_files_a_kill_left_unknown_to_its_state_and_leaves_those_past_its_episode(tmp_path):
    root, settings = tmp_path / "out", ("run.eval_every=0", "run.keep_best=1")
    ckpts = checkpoints(root, *settings)
    (kept,) = ckpts.glob("ep*.ckpt")
    for stray in ("ep000002.ckpt", "ep000006.ckpt", "ep000008.ckpt"):  # left by a kill before their removal, and
        if not (ckpts / stray).exists():  # one past the episode the resume will start from (an older ckpt_path)
            (ckpts / stray).write_bytes(kept.read_bytes())
    with open(root / "logs" / NAME / "metrics.csv", newline="") as f:
        smooth = {int(float(r["episode"])): float(r["train/loss_smooth"]) for r in csv.DictReader(f)
                  if r.get("train/loss_smooth")}
    assert train_in_process(root, "run.total_episodes=7", *settings) == 0
    best = min((2, 4, 6), key=smooth.get)
    assert sorted(p.name for p in ckpts.glob("ep*.ckpt")) == [f"ep{best:06d}.ckpt", "ep000008.ckpt"]
    assert sorted(json.loads((ckpts / "latest.json").read_text())["files"]) == sorted(
        p.name for p in ckpts.iterdir() if p.suffix == ".ckpt" and p.name != "ep000008.ckpt")
