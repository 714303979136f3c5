"""metrics.csv across kill -9's, end to end: every episode keeps exactly one row, whether the kill lands right after an
episode's save was decided (its files still being written in the background), or anywhere else."""
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import load, metrics, run_train, train_cmd, wait_for

pytestmark = pytest.mark.slow
NAME = "MLP_8ch_D4"

# Runs train.py (argv[2:]) after making Lightning's logger connector SIGKILL the process at global step argv[1], just
# after that step's on_train_batch_end hooks, where its checkpoint was serialised and queued for writing.
KILL_AFTER_THE_SAVE = """
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


# A notebook that ran W&B (argv[1]: its folder): it prints the WANDB_SERVICE wandb gave its own service, which the
# processes it starts inherit, and keeps that service until its stdin closes.
NOTEBOOK = """
import os, sys, wandb
wandb.init(mode="offline", dir=sys.argv[1], project="notebook").finish()
print(os.environ["WANDB_SERVICE"], flush=True)
sys.stdin.read()
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
    """The environment of a train.py subprocess: ours, its output unbuffered, W&B offline."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def test_a_kill_right_after_a_save_keeps_a_whole_checkpoint_and_the_rows_of_its_episodes(tmp_path):
    root, episodes, killed_at = tmp_path / "out", 6, 3
    overrides = ("model=mlp", "run.save_every=1", f"run.total_episodes={episodes}")
    cmd = train_cmd(root, *overrides)
    killed = subprocess.run([cmd[0], "-c", KILL_AFTER_THE_SAVE, str(killed_at), *cmd[1:]], cwd=tmp_path,
                            env=env(), text=True, capture_output=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    saved = load(root / "checkpoints" / NAME / "last.ckpt")["global_step"]
    assert saved in (killed_at - 1, killed_at)  # the save of the last episode may not have been written yet
    rows = rows_per_episode(root)  # its episodes' rows were written before it, and no episode has two
    assert set(range(1, saved + 1)) <= set(rows) <= set(range(1, killed_at + 1)) and set(rows.values()) == {1}

    resumed = run_train(root, *overrides)  # from last.ckpt's episode, or the killed one's file when it was whole
    start = re.search(r"Resuming from episode (\d+)", resumed.stdout)
    assert resumed.returncode == 0 and start and saved <= int(start.group(1)) <= killed_at, resumed.stdout[-3000:]
    assert rows_per_episode(root) == Counter(range(1, episodes + 1))


def test_kills_at_random_moments_leave_one_row_per_episode_and_one_point_per_episode_in_the_dashboards(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rng = random.Random(15)
    root, episodes = tmp_path / "out", 300
    overrides = ("model=mlp", "run.save_every=4", f"run.total_episodes={episodes}", "run.plot_every=0",
                 "run.media_every=0", "logger=[tensorboard,wandb]")
    # Started from a notebook holding a W&B service: a killed session's run must not stay open there (wandb refused
    # the next session: "run ID ... is in use").
    notebook = subprocess.Popen([sys.executable, "-c", NOTEBOOK, str(tmp_path)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, env=env(), text=True)
    try:
        service = {"WANDB_SERVICE": notebook.stdout.readline().strip()}
        assert service["WANDB_SERVICE"], "the notebook's W&B service did not start"
        for session in range(3):
            target = newest_episode(root) + rng.randint(3, 40)  # an episode from a few to ten saves past the resume
            output = tmp_path / f"session{session}.log"
            with open(output, "w") as out:
                proc = subprocess.Popen(train_cmd(root, *overrides), cwd=tmp_path, env={**env(), **service},
                                        stdout=out, stderr=out)
            wait_for(lambda: proc.poll() is not None or newest_episode(root) >= target, every=0.005)
            time.sleep(rng.uniform(0.0, 0.05))  # and a random moment in the episodes after it
            ended = f"session {session} ended before it could be killed:\n{output.read_text()[-3000:]}"
            assert proc.poll() is None, ended
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        final = run_train(root, *overrides, env=service)
    finally:
        notebook.stdin.close()
        notebook.wait(timeout=60)
    assert final.returncode == 0 and f"Completed {episodes}/{episodes}" in final.stdout, final.stdout[-3000:]
    assert rows_per_episode(root) == Counter(range(1, episodes + 1))
    logs = root / "logs" / NAME
    events = EventAccumulator(str(logs / "tensorboard"))
    events.Reload()  # the points a killed session wrote past its checkpoint, purged by the session replaying them
    assert [e.step for e in events.Scalars("train/loss")] == list(range(episodes))
    run_id = (logs / "wandb_id.txt").read_text().strip()  # one W&B run: every session's offline files under its id
    assert [p.name.rsplit("-", 1)[1] for p in (logs / "wandb").glob("offline-run-*")] == [run_id] * 4
