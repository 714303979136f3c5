"""metrics.csv across kill -9's, end to end: every episode keeps exactly one row, whether the kill lands between an
episode's checkpoint and the row Lightning writes after it, or anywhere else."""
import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import load, metrics, run_train, train_cmd, wait_for

pytestmark = pytest.mark.slow
NAME = "MLP_8ch_D4"

# Runs train.py (argv[2:]) after making Lightning's logger connector SIGKILL the process as it is about to log the
# training row of global step argv[1]: after that step's on_train_batch_end hooks, where its checkpoint is saved.
KILL_BEFORE_LIGHTNING_ROW = """
import os, runpy, signal, sys
from lightning.pytorch.trainer.connectors.logger_connector.logger_connector import _LoggerConnector

kill_at, original = int(sys.argv[1]), _LoggerConnector.update_train_step_metrics

def update_train_step_metrics(self):
    if self.trainer.global_step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    original(self)

_LoggerConnector.update_train_step_metrics = update_train_step_metrics
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def rows_per_episode(root: Path) -> Counter:
    """How many rows with a training loss metrics.csv holds for each episode."""
    return Counter(int(float(row["episode"])) for row in metrics(root, NAME))


def newest_episode(root: Path) -> int:
    """The latest episode with a training row in metrics.csv; 0 before there is one."""
    try:
        return max(rows_per_episode(root), default=0)
    except FileNotFoundError:
        return 0


def env() -> dict[str, str]:
    """The environment of a train.py subprocess: ours, its output unbuffered."""
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def test_a_kill_between_the_checkpoint_and_lightnings_row_keeps_the_row(tmp_path):
    root, episodes, killed_at = tmp_path / "out", 6, 3
    overrides = ("model=mlp", "run.save_every=1", f"run.total_episodes={episodes}")
    cmd = train_cmd(root, *overrides)
    killed = subprocess.run([cmd[0], "-c", KILL_BEFORE_LIGHTNING_ROW, str(killed_at), *cmd[1:]], cwd=tmp_path,
                            env=env(), text=True, capture_output=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert load(root / "checkpoints" / NAME / "last.ckpt")["global_step"] == killed_at  # saved before the kill
    assert rows_per_episode(root) == Counter(range(1, killed_at + 1))  # and so was its row

    resumed = run_train(root, *overrides)
    assert resumed.returncode == 0 and f"Resuming from episode {killed_at}" in resumed.stdout, resumed.stdout[-3000:]
    assert rows_per_episode(root) == Counter(range(1, episodes + 1))


def test_kills_at_random_moments_leave_one_row_per_episode(tmp_path):
    rng = random.Random(15)
    root, episodes = tmp_path / "out", 300
    overrides = ("model=mlp", "run.save_every=4", f"run.total_episodes={episodes}", "run.plot_every=0")
    for _ in range(3):
        target = newest_episode(root) + rng.randint(3, 40)  # an episode from a few to ten saves past the resume
        proc = subprocess.Popen(train_cmd(root, *overrides), cwd=tmp_path, env=env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        wait_for(lambda: proc.poll() is not None or newest_episode(root) >= target, every=0.005)
        time.sleep(rng.uniform(0.0, 0.05))  # and a random moment in the episodes after it
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    final = run_train(root, *overrides)
    assert final.returncode == 0 and f"Completed {episodes}/{episodes}" in final.stdout, final.stdout[-3000:]
    assert rows_per_episode(root) == Counter(range(1, episodes + 1))
