"""`atheria stop`: the command writes a request only for a running experiment, and a real run stops on request as
at a budget stop (saved, mirrored, request removed). The request file and its poller: tests/session/."""
import json
import os
import subprocess
import sys

import pytest

from atheria.cli.main import main
from atheria.session.status import Status, write_status
from atheria.session.stop_request import STOP_NAME, read_stop_request
from atheria.storage.paths import join
from tests.helpers import REPO, load, train_cmd, wait_for

NAME = "MLP_8ch_D4"


def test_stop_command_writes_a_request_only_for_a_running_experiment(tmp_path, capsys):
    root = f"memory://stop-cmd-{tmp_path.name}"
    write_status(join(root, "logs", "run"), Status("run", 100, episode=7))
    write_status(join(root, "logs", "done"), Status("done", 100, state="completed", episode=100))
    assert main(["stop", root, "--name", "run"]) == 0
    assert "Stop requested" in capsys.readouterr().out
    assert set(read_stop_request(join(root, "logs", "run"))) == {"requested", "by"}
    assert main(["stop", root, "--name", "done"]) == 0
    assert "done is not running (state completed" in capsys.readouterr().out
    assert read_stop_request(join(root, "logs", "done")) is None
    assert main(["stop", root, "--name", "nope"]) == 2
    assert "no experiment named 'nope'" in capsys.readouterr().err


def status(root, name=NAME):
    return json.loads((root / "logs" / name / "status.json").read_text())


@pytest.mark.slow
def test_a_running_training_stops_on_request_saved_and_mirrored(tmp_path):
    root, remote = tmp_path / "out", tmp_path / "remote"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    train = subprocess.Popen(train_cmd(root, "model=mlp", "run.total_episodes=100000", "run.save_every=3",
                                       f"storage.remote={remote}"),
                             cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: (root / "checkpoints" / NAME / "ep000003.ckpt").exists(), timeout=120)
        stop = subprocess.run([sys.executable, "-m", "atheria", "stop", str(remote), "--name", NAME], cwd=REPO,
                              env=env, text=True, capture_output=True, timeout=60)
        assert stop.returncode == 0 and "Stop requested" in stop.stdout, stop.stderr
        out, err = train.communicate(timeout=120)
    finally:
        if train.poll() is None:
            train.kill()
    assert train.returncode == 0, err[-3000:]
    assert "Stopped at episode" in out and "on request (atheria stop)" in out
    episode = status(root)["episode"]
    assert status(root)["state"] == status(remote)["state"] == "stopped-request"
    assert status(remote)["episode"] == episode >= 3
    assert load(root / "checkpoints" / NAME / "last.ckpt")["global_step"] == episode
    assert load(remote / "checkpoints" / NAME / "last.ckpt")["global_step"] == episode
    assert json.loads((remote / "checkpoints" / NAME / "latest.json").read_text())["step"] == episode
    assert not (root / "logs" / NAME / STOP_NAME).exists() and not (remote / "logs" / NAME / STOP_NAME).exists()
    assert not (root / "exports").exists(), "only a completed run exports"
