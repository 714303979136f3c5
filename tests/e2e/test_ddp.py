"""Lightning's DDP with two CPU processes (gloo): ranks play different episodes and stop and resume together."""
import json
import time

import pytest
import torch

from atheria.data.episodes import EpisodeStream
from tests.helpers import TINY, load, metrics, run_train, tiny_lm, write_corpus

DDP = ("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "model=mlp", "run.monitor_every=0")
NAME = "MLP_8ch_D4"


def test_each_rank_plays_its_own_episode():
    ranks = [next(iter(EpisodeStream(7, 5, 1, 8, 2, rank=r, world=2))) for r in (0, 1)]
    assert [s["episode"] for s in ranks] == [5, 5] and [s["sample"] for s in ranks] == [10, 11]
    assert not torch.equal(ranks[0]["psi0"], ranks[1]["psi0"])
    single = next(iter(EpisodeStream(7, 5, 1, 8, 2)))
    assert single["sample"] == 5  # one process: the sample is the episode, as before


@pytest.mark.slow
def test_ddp_budget_stop_and_resume(tmp_path):
    root, remote = tmp_path / "out", tmp_path / "remote"
    start = time.time()
    # One hour of budget of which all but ~60 s (both processes' start-up included) is used.
    stopped = run_train(root, *DDP, "qca.steps=20", "run.total_episodes=100000", f"storage.remote={remote}",
                        "run.max_hours=1", f"run.session_start={start - 3600 * 0.9 + 60}", timeout=300)
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert stopped.stdout.count("to stay within the session budget") == 1  # said once, by rank zero
    status = json.loads((root / "logs" / NAME / "status.json").read_text())
    step = load(root / "checkpoints" / NAME / "last.ckpt")["global_step"]
    assert status["state"] == "stopped-budget" and status["episode"] == step > 0
    assert load(remote / "checkpoints" / NAME / "last.ckpt")["global_step"] == step
    resumed = run_train(root, *DDP, "qca.steps=20", f"run.total_episodes={step + 3}", f"storage.remote={remote}",
                        timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming from episode {step}" in resumed.stdout
    assert load(root / "checkpoints" / NAME / "last.ckpt")["global_step"] == step + 3
    episodes = [int(float(r["episode"])) for r in metrics(root, NAME)]
    assert episodes == list(range(1, step + 4))  # one row per episode: only rank zero logs


@pytest.mark.slow
@pytest.mark.parametrize("family", ["qca", "lm"])
def test_a_platform_on_every_device_trains_one_ddp_process_per_device_without_trainer_ddp(tmp_path, family):
    """Kaggle's platform.devices=auto is every visible GPU; here, two CPU devices stand in for "GPU T4 x2": the
    platform's trait alone (no trainer=ddp) gives Lightning's DDP with one process per device, whose ranks train on
    different data."""
    root = tmp_path / "out"
    kaggle = ("platform=kaggle", "platform.force=true", "platform.devices=2", "trainer.accelerator=cpu",
              "run.max_hours=null", "run.monitor_every=0")
    if family == "qca":
        name, family_keys = NAME, (*TINY[:-1], "model=mlp", "run.total_episodes=4")
    else:
        name, family_keys = "GPT2_LoRA_r4", tiny_lm(write_corpus(tmp_path), "trainer.limit_val_batches=2",
                                                    "run.total_episodes=4")
    proc = run_train(root, *kaggle, *family_keys, base=(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MEMBER: 2/2" in proc.stderr, proc.stderr[-2000:]  # Lightning started the second rank
    assert load(root / "checkpoints" / name / "last.ckpt")["global_step"] == 4
    episodes = [int(float(r["episode"])) for r in metrics(root, name) if r.get("train/loss")]
    assert episodes == [1, 2, 3, 4]  # one row per episode: rank zero logs
