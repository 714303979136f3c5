"""The GPT-2 + LoRA family through train.py: it learns, stops on budget or signal, and resumes exactly."""
import csv
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests import helpers
from tests.helpers import load, tiny_lm, wait_for

pytestmark = pytest.mark.slow
NAME = "GPT2_LoRA_r4"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A small generated corpus: train.txt and valid.txt of sentences over a 16-word vocabulary."""
    return helpers.write_corpus(tmp_path_factory.mktemp("corpus"))


def run_train(root, *overrides):
    return helpers.run_train(root, *overrides, base=("platform=local",))


def train_cmd(root, *overrides):
    return helpers.train_cmd(root, *overrides, base=("platform=local",))


def lm(corpus, *overrides):
    return tiny_lm(corpus, "trainer.limit_val_batches=4", *overrides)


def val_rows(root):
    with open(root / "logs" / NAME / "metrics.csv") as f:
        return [r for r in csv.DictReader(f) if r.get("val/perplexity")]


def test_validation_perplexity_falls_and_checkpoints_are_adapter_sized(tmp_path, corpus):
    root = tmp_path / "out"
    proc = run_train(root, *lm(corpus, "model.n_embd=32", "data.block_size=32", "optim.lr=5e-3",
                               "model.lambda_phi=0", "run.total_episodes=30", "run.save_every=10"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ppl = [float(r["val/perplexity"]) for r in val_rows(root)]
    assert len(ppl) == 4 and max(ppl[1:]) < ppl[0] and ppl[3] < 0.95 * ppl[0], ppl  # ppl[0]: before training
    last = root / "checkpoints" / NAME / "last.ckpt"
    state = load(last)["state_dict"]
    assert state and all("lora_" in k for k in state if k.startswith("model."))
    assert last.stat().st_size < 1_000_000
    assert "Completed 30/30" in proc.stdout
    generated = [subprocess.run([sys.executable, "-m", "atheria", "generate", str(root / "checkpoints" / NAME /
                                 "best-final.ckpt"), "--prompt", "The universe", "--max-length", "24", "--seed", "3",
                                 "--num-samples", "2"], capture_output=True, text=True, timeout=300)
                 for _ in range(2)]
    assert all(g.returncode == 0 for g in generated), generated[0].stderr[-2000:]
    assert generated[0].stdout == generated[1].stdout and generated[0].stdout.count("The universe") == 2


def test_budget_stop_then_resume_reaches_the_uninterrupted_weights(tmp_path, corpus):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    start = time.time()
    # A 1 h budget of which all but ~50 s (start-up included) is already used: the run stops itself mid-way.
    stopped = run_train(parts, *lm(corpus, "run.total_episodes=100000", "run.save_every=4", "run.max_hours=1",
                                   "run.early_stop=null", f"run.session_start={start - 3600 * 0.9 + 50}"))
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert "to stay within the session budget" in stopped.stdout
    step = load(parts / "checkpoints" / NAME / "last.ckpt")["global_step"]
    assert step > 0
    total = step + 5
    resumed = run_train(parts, *lm(corpus, f"run.total_episodes={total}", "run.save_every=4", "run.early_stop=null"))
    assert resumed.returncode == 0 and f"Resuming from episode {step}" in resumed.stdout
    whole_run = run_train(whole, *lm(corpus, f"run.total_episodes={total}", "run.save_every=4", "run.early_stop=null"))
    assert whole_run.returncode == 0
    a, b = load(whole / "checkpoints" / NAME / "last.ckpt"), load(parts / "checkpoints" / NAME / "last.ckpt")
    assert a["global_step"] == b["global_step"] == total
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key


def test_sigterm_mid_run_then_resume_continues_the_step_count(tmp_path, corpus):
    root = tmp_path / "out"
    proc = subprocess.Popen(train_cmd(root, *lm(corpus, "run.total_episodes=100000", "run.save_every=3")),
                            cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: (root / "checkpoints" / NAME / "last.ckpt").exists())
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    step = load(root / "checkpoints" / NAME / "last.ckpt")["global_step"]
    more = run_train(root, *lm(corpus, f"run.total_episodes={step + 2}", "run.save_every=3"))
    assert more.returncode == 0 and f"Resuming from episode {step}" in more.stdout
    assert load(root / "checkpoints" / NAME / "last.ckpt")["global_step"] == step + 2
