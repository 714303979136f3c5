"""A language model's checkpoints are ranked by val/loss, each by the validation of its own episode, across
sessions."""
import csv
import json
import os

import pytest
import torch

from atheria.runner import train
from tests.helpers import compose, load, tiny_lm, write_corpus

NAME = "GPT2_LoRA_r4"


def lm_session(root, corpus, total, *overrides):
    """One in-process session of a tiny language model under `root`, validated on 2 batches; its last.ckpt."""
    assert train(compose(root, *tiny_lm(corpus, "trainer.limit_val_batches=2", f"run.total_episodes={total}",
                                        *overrides), base=("platform=local",))).code == 0
    return root / "checkpoints" / NAME / "last.ckpt"


def test_checkpoints_are_ranked_by_the_validation_loss_of_their_own_episode_across_sessions(tmp_path):
    corpus = write_corpus(tmp_path)
    root = tmp_path / "out"
    ckpts = root / "checkpoints" / NAME

    def session(total):
        lm_session(root, corpus, total, "optim.lr=5e-3", "run.save_every=10", "run.keep_best=2")
        with open(root / "logs" / NAME / "metrics.csv") as f:
            val = {int(float(r["episode"])): float(r["val/loss"]) for r in csv.DictReader(f) if r.get("val/loss")}
        assert sorted(val) == [0, *range(10, total + 1, 10)]  # before training, then at every save
        state = next(v for k, v in load(ckpts / "last.ckpt")["callbacks"].items() if k.startswith("TieredCheckpoint"))
        assert state["monitor"] == "val/loss"
        ranked = {int(path.rsplit("ep", 1)[1][:6]): float(score) for path, score in state["best_k_models"].items()}
        saves = range(10, total + 1, 10)
        assert ranked == {step: val[step] for step in sorted(saves, key=val.get)[:2]}, (ranked, val)
        assert sorted(p.name for p in ckpts.glob("ep*.ckpt")) == [f"ep{s:06d}.ckpt" for s in sorted(ranked)]
        best = min(saves, key=val.get)
        assert json.loads((ckpts / "latest.json").read_text())["files"]["best-final.ckpt"]["step"] == best
        assert load(ckpts / "best-final.ckpt")["global_step"] == best
        return ranked

    first = session(30)
    assert 30 in first  # the run's last episode, a stop: ranked after its validation, and last.ckpt renewed as a
    assert os.path.samefile(ckpts / "last.ckpt", ckpts / "ep000030.ckpt")  # link to the ranked file
    session(60)  # continues from 30: the ranking goes on with the first session's files


@pytest.mark.parametrize("stop", [8, pytest.param(9, marks=pytest.mark.slow)], ids=["at-a-save", "between-saves"])
def test_a_session_stopped_at_or_between_saves_resumes_to_the_uninterrupted_runs_weights_and_schedules(
        tmp_path, budget_ends_at, stop):
    corpus = write_corpus(tmp_path)

    def session(root, total):
        return load(lm_session(root, corpus, total, "run.save_every=4"))

    def early(checkpoint):
        return next(v for k, v in checkpoint["callbacks"].items() if k.startswith("EarlyStopping"))

    whole = session(tmp_path / "whole", 12)
    budget_ends_at["step"] = stop
    assert session(tmp_path / "parts", 1000)["global_step"] == stop
    budget_ends_at["step"] = None
    parts = session(tmp_path / "parts", 12)
    assert parts["global_step"] == whole["global_step"] == 12
    # The plateau schedule stepped at the validations of 4, 8 and 12 in both (Lightning stepped it after the save
    # of 8, which a resume from that save lost); early stopping counted the same validations.
    assert whole["lr_plateau"]["last_epoch"] == 3 and parts["lr_plateau"] == whole["lr_plateau"]
    assert early(whole)["wait_count"] > 0 and early(parts) == early(whole)
    for key, value in whole["state_dict"].items():
        assert torch.equal(value, parts["state_dict"][key]), key


def test_a_checkpoint_whose_plateau_schedule_lightning_held_resumes_with_it(tmp_path):
    """Checkpoints written before the module stepped the schedule itself hold it in Lightning's lr_schedulers."""
    corpus, root = write_corpus(tmp_path), tmp_path / "out"

    checkpoint = load(lm_session(root, corpus, 8, "run.save_every=4"))
    plateau = checkpoint.pop("lr_plateau")
    checkpoint["lr_schedulers"] = [{**plateau, "num_bad_epochs": 7, "best": 0.5}]  # marked, to be told apart
    older = tmp_path / "older.ckpt"
    torch.save(checkpoint, older)
    resumed = load(lm_session(root, corpus, 12, "run.save_every=4", f"ckpt_path={older}"))["lr_plateau"]
    # 7 bad validations before, one more at 12 (above a best of 0.5): past the patience of 2, so the rate halved.
    assert resumed["last_epoch"] == plateau["last_epoch"] + 1 and resumed["best"] == 0.5
    assert resumed["_last_lr"] == [plateau["_last_lr"][0] * 0.5] and resumed["num_bad_epochs"] == 0
