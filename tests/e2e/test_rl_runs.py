"""The RL scheduler through train.py: it stops on the session budget and on SIGTERM, saved and mirrored, and the next
session continues the agent's step count with the hyperparameters it is given."""
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests import helpers
from tests.helpers import load, wait_for

pytestmark = pytest.mark.slow
NAME = "RL_ppo_GPT2_LoRA_r4"
TINY = ("platform=local", "task=rl_scheduler", "model.pretrained=null", "model.n_embd=8", "model.lora_r=4",
        "data.block_size=16", "data.batch_size=5", "rl.inner_steps=1", "rl.max_steps=4", "rl.n_steps=8",
        "rl.batch_size=8", "rl.n_epochs=2", "rl.n_eval_episodes=1", "rl.net_arch=[16]", "rl.save_freq=8",
        "rl.eval_freq=16")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return helpers.write_corpus(tmp_path_factory.mktemp("corpus"))


def run(root, corpus, *overrides):
    return helpers.run_train(root, f"data.path={corpus}", *overrides, base=TINY)


def status(root):
    return json.loads((root / "logs" / NAME / "status.json").read_text())


def progress(root):
    with open(root / "logs" / NAME / "progress.csv") as f:
        return list(csv.DictReader(f))


def test_budget_stop_then_a_resume_with_a_new_lr_continues_the_steps(tmp_path, corpus):
    root = tmp_path / "out"
    start = time.time()
    # A 1 h budget of which all but ~60 s (start-up included) is already used: the run stops itself mid-way.
    stopped = run(root, corpus, "rl.timesteps=100000", "run.max_hours=1", f"run.session_start={start - 3240 + 60}")
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert "to stay within the session budget" in stopped.stdout and "same command" in stopped.stdout
    step = load(root / "checkpoints" / NAME / "last.ckpt")["global_step"]
    assert step > 0 and status(root)["state"] == "stopped-budget" and status(root)["episode"] == step

    total = step + 16
    resumed = run(root, corpus, f"rl.timesteps={total}", "rl.lr=1e-4")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming from episode {step}" in resumed.stdout and f"Completed {total}/{total} steps" in resumed.stdout
    assert "Evaluation reward, mean of 1 episodes: agent" in resumed.stdout
    assert all(f"always {a}" in resumed.stdout for a in ("TEXT", "PHI", "MIXED")) and "best constant action (" in \
        resumed.stdout
    report = (root / "logs" / NAME / f"{NAME}_REPORT.md").read_text()  # the same comparison, kept with the run
    console = re.search(r"agent \(step (\d+)\) ([-\d.]+), always TEXT ([-\d.]+), always PHI ([-\d.]+), "
                        r"always MIXED ([-\d.]+), random ([-\d.]+)", resumed.stdout).groups()
    table = re.findall(r"^\| (agent \(step \d+\)|always \w+|random) \| ([-\d.]+) \|$", report, re.M)
    assert table == [(f"agent (step {console[0]})", console[1]), ("always TEXT", console[2]),
                     ("always PHI", console[3]), ("always MIXED", console[4]), ("random", console[5])]
    assert f"Completed {total}/{total} steps" in report and "best constant action (" in report
    assert f"rl.timesteps={total}" in report.rstrip().splitlines()[-1] and "The run is complete" in report
    last = load(root / "checkpoints" / NAME / "last.ckpt")
    assert last["global_step"] == total and last["agent"]["num_timesteps"] == total
    assert status(root)["state"] == "completed"
    later = [r for r in progress(root) if int(r["step"]) > step and r["learning_rate"]]
    assert later and all(float(r["learning_rate"]) == 1e-4 for r in later)
    assert 1 <= len(list((root / "checkpoints" / NAME).glob("step*.ckpt"))) <= 5  # the best run.keep_best
    assert (root / "checkpoints" / NAME / "best-final.ckpt").exists()

    again = run(root, corpus, f"rl.timesteps={total}")
    assert again.returncode == 0 and "already complete" in again.stdout and "raise rl.timesteps" in again.stdout
    assert "Resuming" not in again.stdout
    generated = subprocess.run([sys.executable, "-m", "atheria", "generate",
                                str(root / "checkpoints" / NAME / "best-final.ckpt"), "--prompt", "Test",
                                "--max-length", "12"], capture_output=True, text=True, timeout=300, cwd=helpers.REPO)
    assert generated.returncode == 0 and generated.stdout.startswith("Test"), generated.stderr[-2000:]


def test_sigterm_saves_mirrors_and_the_next_session_continues(tmp_path, corpus):
    root, remote = tmp_path / "out", tmp_path / "remote"
    cmd = helpers.train_cmd(root, f"data.path={corpus}", "rl.timesteps=100000", f"storage.remote={remote}",
                            base=TINY)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: (root / "checkpoints" / NAME / "last.ckpt").exists(), timeout=300)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert "SIGTERM received" in out and "on SIGTERM" in out
    step = load(root / "checkpoints" / NAME / "last.ckpt")["global_step"]
    assert status(root)["state"] == "stopped-signal" and status(root)["episode"] == step >= 8
    manifest = json.loads((remote / "checkpoints" / NAME / "latest.json").read_text())
    assert manifest["step"] == step and load(remote / "checkpoints" / NAME / "last.ckpt")["global_step"] == step
    assert json.loads((remote / "logs" / NAME / "status.json").read_text())["state"] == "stopped-signal"

    more = run(root, corpus, f"rl.timesteps={step + 8}")
    assert more.returncode == 0 and f"Resuming from episode {step}" in more.stdout, more.stderr[-3000:]
    assert load(root / "checkpoints" / NAME / "last.ckpt")["global_step"] == step + 8
