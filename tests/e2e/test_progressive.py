"""Progressive training end to end: budget stops, signals, exact continuation, resume from every kind of remote."""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest
import torch

from tests.helpers import load, metrics, run_train, train_cmd, train_in_process, wait_for

pytestmark = pytest.mark.slow
NAME = "UNET_8ch_D4"
SLOW = ("model=unet", "qca.grid_size=16", "qca.steps=10")


def status(root, name=NAME):
    return json.loads((root / "logs" / name / "status.json").read_text())


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_budget_stop_saves_says_why_and_next_session_continues(tmp_path):
    root = tmp_path / "out"
    start = time.time()
    # A 216 s budget stopping at 90% (194.4 s), of which the session has already used 150 s. Its 10% (21.6 s) are
    # what the end of the session (final save, picture, plots, report, exit) may take on a loaded machine.
    proc = run_train(root, *SLOW, "run.total_episodes=100000", "run.max_hours=0.06",
                     f"run.session_start={start - 150}", "run.save_every=1000")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert time.time() < start - 150 + 216, "the run overran its budget"
    assert "to stay within the session budget" in proc.stdout and "same command" in proc.stdout
    st = status(root)
    assert st["state"] == "stopped-budget"
    assert load(root / "checkpoints" / NAME / "last.ckpt")["global_step"] == st["episode"]
    again = run_train(root, *SLOW, "run.total_episodes=" + str(st["episode"] + 3))
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"Resuming from episode {st['episode']}" in again.stdout
    assert status(root)["state"] == "completed"


def test_completed_run_exits_at_once_and_a_raised_total_continues(tmp_path):
    root = tmp_path / "out"
    assert run_train(root, "model=mlp").returncode == 0
    done = run_train(root, "model=mlp")
    assert done.returncode == 0 and "already complete (4/4 episodes)" in done.stdout
    more = run_train(root, "model=mlp", "run.total_episodes=6")
    assert more.returncode == 0 and "Completed 6/6" in more.stdout


def _start(root, *overrides):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(train_cmd(root, *SLOW, *overrides), cwd=root.parent, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_sigterm_saves_mirrors_and_exits_cleanly(tmp_path):
    root, remote = tmp_path / "out", tmp_path / "remote"
    proc = _start(root, "run.total_episodes=100000", "run.save_every=3", f"storage.remote={remote}")
    wait_for(lambda: (root / "checkpoints" / NAME / "ep000003.ckpt").exists())
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert "SIGTERM received" in out and "on SIGTERM" in out
    st = status(root)
    assert st["state"] == "stopped-signal"
    step = load(root / "checkpoints" / NAME / "last.ckpt")["global_step"]
    assert step == st["episode"] >= 3
    manifest = json.loads((remote / "checkpoints" / NAME / "latest.json").read_text())
    assert manifest["step"] == step
    assert load(remote / "checkpoints" / NAME / "last.ckpt")["global_step"] == step
    assert json.loads((remote / "logs" / NAME / "status.json").read_text())["state"] == "stopped-signal"


def test_second_ctrl_c_exits_at_once_leaving_a_valid_checkpoint(tmp_path):
    root = tmp_path / "out"
    proc = _start(root, "run.total_episodes=100000", "run.save_every=2", "qca.steps=40")
    wait_for(lambda: (root / "checkpoints" / NAME / "last.ckpt").exists())
    proc.send_signal(signal.SIGINT)
    # Pressed again once the first is taken, as a user does: two SIGINTs that arrive while the main thread is held
    # in one torch call (or descheduled, on a loaded machine) reach Python as one, a graceful stop.
    said = []
    for line in proc.stdout:
        said.append(line)
        if "SIGINT received" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "exiting now" in out, "".join(said) + out
    assert load(root / "checkpoints" / NAME / "last.ckpt")["global_step"] >= 2


@pytest.mark.parametrize("batch", [1, 3])  # 3: each optimizer step plays 3 episodes, each seeded on its own
def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path, batch):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    common = ("run.total_episodes=12", "run.save_every=3", "qca.noise=true", "qca.noise_ramp=4",
              f"qca.batch_size={batch}")
    assert run_train(whole, *SLOW, *common).returncode == 0
    proc = _start(parts, *common)
    wait_for(lambda: (parts / "checkpoints" / NAME / "ep000003.ckpt").exists(), every=0.02)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    stopped_at = load(parts / "checkpoints" / NAME / "last.ckpt")["global_step"]
    assert 3 <= stopped_at < 12
    resumed = run_train(parts, *SLOW, *common)
    assert resumed.returncode == 0 and f"Resuming from episode {stopped_at}" in resumed.stdout
    a = load(whole / "checkpoints" / NAME / "last.ckpt")
    b = load(parts / "checkpoints" / NAME / "last.ckpt")
    assert a["global_step"] == b["global_step"] == 12
    assert same_weights(a["state_dict"], b["state_dict"])
    assert [r["train/loss"] for r in metrics(whole, NAME)] == [r["train/loss"] for r in metrics(parts, NAME)]


def _fresh_machine_resume(tmp_path, remote_root, run):
    root = tmp_path / "out"
    assert run(root, "model=mlp", f"storage.remote={remote_root}") == 0
    shutil.rmtree(root)
    assert run(root, "model=mlp", f"storage.remote={remote_root}", "run.total_episodes=6") == 0
    ckpt = load(root / "checkpoints" / "MLP_8ch_D4" / "last.ckpt")
    assert ckpt["global_step"] == 6
    rows = metrics(root, "MLP_8ch_D4")  # history came back from the remote with the logs
    assert [int(float(r["episode"])) for r in rows] == [1, 2, 3, 4, 5, 6]


def _subprocess_run(root, *overrides):
    proc = run_train(root, *overrides)
    assert "Resuming from episode 4" in proc.stdout or "starting fresh" in proc.stdout, proc.stdout
    return proc.returncode


def test_fresh_machine_resumes_from_a_directory_remote(tmp_path):
    _fresh_machine_resume(tmp_path, tmp_path / "drive", _subprocess_run)


def test_fresh_machine_resumes_from_memory_remote(tmp_path):
    _fresh_machine_resume(tmp_path, f"memory://atheria-{tmp_path.name}", train_in_process)


def test_fresh_machine_resumes_from_a_gcs_bucket(tmp_path, gcs_root):
    _fresh_machine_resume(tmp_path, f"{gcs_root}/{tmp_path.name}", _subprocess_run)


def test_best_n_are_kept_locally_and_pruned_remotely(tmp_path):
    root, remote = tmp_path / "out", tmp_path / "remote"
    proc = run_train(root, "model=mlp", "run.total_episodes=10", "run.save_every=1", "run.sync_every=2",
                     "run.keep_best=2", f"storage.remote={remote}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    local_ckpts = sorted(p.name for p in (root / "checkpoints" / "MLP_8ch_D4").glob("*.ckpt"))
    remote_ckpts = sorted(p.name for p in (remote / "checkpoints" / "MLP_8ch_D4").glob("*.ckpt"))
    assert len([n for n in local_ckpts if n.startswith("ep")]) == 2
    assert {"last.ckpt", "best-final.ckpt"} <= set(local_ckpts)
    assert remote_ckpts == local_ckpts
    manifest = json.loads((remote / "checkpoints" / "MLP_8ch_D4" / "latest.json").read_text())
    assert sorted(manifest["files"]) == remote_ckpts and manifest["step"] == 10
    best = min(manifest["files"].items(), key=lambda kv: kv[1]["step"] if kv[0].startswith("ep") else 1e9)
    assert manifest["files"]["best-final.ckpt"]["sha256"] in {e["sha256"] for n, e in manifest["files"].items()
                                                             if n.startswith("ep")}
    assert best


def test_corrupt_newest_checkpoint_falls_back_with_a_message(tmp_path):
    root = tmp_path / "out"
    assert run_train(root, "model=mlp", "run.total_episodes=5").returncode == 0
    last = root / "checkpoints" / "MLP_8ch_D4" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # truncated
    proc = run_train(root, "model=mlp", "run.total_episodes=6")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "last.ckpt" in proc.stdout and "falling back" in proc.stdout
    assert "Resuming from episode 4" in proc.stdout


def test_malicious_checkpoint_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "evil.ckpt"
    torch.save({"global_step": 1, "state_dict": {}, "x": Evil()}, bad)
    proc = run_train(tmp_path / "out", "model=mlp", f"ckpt_path={bad}", cwd=tmp_path)
    assert proc.returncode == 2
    assert "not a loadable checkpoint" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not marker.exists()


def test_wandb_offline_keeps_one_run_id_across_sessions(tmp_path):
    root, remote = tmp_path / "out", tmp_path / "remote"
    common = ("model=mlp", "logger=wandb", f"storage.remote={remote}")
    assert run_train(root, *common).returncode == 0
    run_id = (root / "logs" / "MLP_8ch_D4" / "wandb_id.txt").read_text().strip()
    assert (remote / "logs" / "MLP_8ch_D4" / "wandb_id.txt").read_text().strip() == run_id
    assert run_train(root, *common, "run.total_episodes=6").returncode == 0
    runs = sorted(p.name for p in (root / "logs" / "MLP_8ch_D4" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(name.endswith(run_id) for name in runs)
