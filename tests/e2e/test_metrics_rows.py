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

from tests import wandb_offline
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
    sent = [e for run in wandb_offline.runs(logs) for e in wandb_offline.metric_episodes(wandb_offline.history(run))]
    assert sent == sorted(set(sent)) and sent[-1] == episodes  # never a second point: a kill costs W&B at most the
    #                                                            points its service had not written yet


def test_a_kill_before_the_first_save_and_a_start_over_leave_one_row_and_one_point_per_episode(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root = tmp_path / "out"
    logs = root / "logs" / NAME
    overrides = ("model=mlp", "run.save_every=1000", "run.plot_every=0", "run.media_every=0",
                 "logger=[tensorboard,wandb]")

    def tensorboard_steps():
        events = EventAccumulator(str(logs / "tensorboard"))
        events.Reload()
        return [e.step for e in events.Scalars("train/loss")]

    with open(tmp_path / "killed.log", "w") as out:
        proc = subprocess.Popen(train_cmd(root, *overrides, "run.total_episodes=1000"), cwd=tmp_path, env=env(),
                                stdout=out, stderr=out)
    wait_for(lambda: proc.poll() is not None or newest_episode(root) >= 10, every=0.005)
    assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert newest_episode(root) >= 10 and not list((root / "checkpoints" / NAME).glob("*.ckpt"))
    run_id, handed = (logs / "wandb_id.txt").read_text(), int((logs / "wandb_episode.txt").read_text())

    # The next session starts at episode 1 again (no checkpoint): its episodes replace the killed session's.
    total = handed + 20
    second = run_train(root, *overrides, f"run.total_episodes={total}")
    assert second.returncode == 0 and "starting fresh" in second.stdout, second.stdout[-3000:]
    assert rows_per_episode(root) == Counter(range(1, total + 1))
    assert tensorboard_steps() == list(range(total))
    assert (logs / "wandb_id.txt").read_text() == run_id  # one experiment, one W&B run
    killed, resumed = [wandb_offline.metric_episodes(wandb_offline.history(run)) for run in wandb_offline.runs(logs)]
    assert resumed == list(range(handed + 1, total + 1))  # W&B got the killed session's episodes up to `handed`
    assert killed == list(range(1, len(killed) + 1)) and len(killed) <= handed  # (less what the kill cut from its
    #                                                                             file): never a second point

    # Started over deliberately: the history restarts, and W&B gets a new run whose points are not held back.
    third = run_train(root, *overrides, "run.total_episodes=5", "ckpt_path=null")
    assert third.returncode == 0 and "Starting fresh (ckpt_path=null)" in third.stdout, third.stdout[-3000:]
    assert rows_per_episode(root) == Counter(range(1, 6))
    assert tensorboard_steps() == list(range(5))
    new_id = (logs / "wandb_id.txt").read_text()
    assert new_id != run_id
    (newest,) = [run for run in wandb_offline.runs(logs) if run.name == f"run-{new_id}.wandb"]
    assert wandb_offline.metric_episodes(wandb_offline.history(newest)) == [1, 2, 3, 4, 5]
