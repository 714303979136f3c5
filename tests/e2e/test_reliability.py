"""Reliability end to end, with every fault injected for real: kill -9 at random moments (inside checkpoint writes
and mirror uploads too), a full local disk, a remote over quota, and a second process on the same experiment."""
import json
import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

import atheria.session.kit as kit_module
import atheria.storage.mirror as mirror_module
from atheria.session.events import read_events
from atheria.storage.atomic import sha256_file
from tests import faults
from tests.helpers import fill, load, run_train, saved_step, train_cmd, train_in_process, wait_for

pytestmark = pytest.mark.slow
MLP = "MLP_8ch_D4"


def start(root, *overrides, out=None):
    """A train.py process in the background, its output going to `out` (a file) or to pipes."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    sink = open(out, "w") if out else subprocess.PIPE
    return subprocess.Popen(train_cmd(root, *overrides), cwd=root.parent, env=env, text=True, stdout=sink,
                            stderr=subprocess.STDOUT if out else subprocess.PIPE)


REUSED = ("last.ckpt", "best-final.ckpt")


def remote_complete(ckpts: Path, strict: bool = True) -> int | None:
    """The step of a remote's latest.json after checking that every file it names is there with its sha256 (None
    when nothing is published yet). Not `strict`: a reused name may already hold a later whole checkpoint, as the
    mirror uploads a job's files before it publishes the job's manifest; readers accept it by its later step."""
    if not (ckpts / "latest.json").exists():
        return None
    manifest = json.loads((ckpts / "latest.json").read_text())
    assert manifest["checkpoint"] in manifest["files"]
    for name, entry in manifest["files"].items():
        if sha256_file(ckpts / name) != entry["sha256"]:
            assert not strict and name in REUSED and load(ckpts / name)["global_step"] > entry["step"], name
    return manifest["step"]


# --- kill -9, twenty times in a row ---------------------------------------------------------------------------
UNET = "UNET_32ch_D4"  # ~1.7 M parameters: 21 MB checkpoints, whose writes and uploads take tens of ms
EPISODES = 200  # ~0.3 s each; 20 kills used 82 (up to 25 at one kill) in a quiet run: room for a faster machine
KILLED = ("model=unet", "model.hidden_channels=32", "qca.grid_size=8", "qca.steps=3", f"run.total_episodes={EPISODES}",
          "run.save_every=1", "run.sync_every=1", "run.keep_best=2", "run.monitor_every=0", "run.plot_every=0")
PARTIAL = re.compile(r"^\..+\.ckpt\.partial-[0-9a-f]+$")


def partials(folder: Path) -> set[str]:
    """Temp files of checkpoint writes in progress (or cut short) in a folder."""
    try:
        return {n for n in os.listdir(folder) if PARTIAL.match(n)}
    except FileNotFoundError:
        return set()


def kill_when(proc, mode: str, rng: random.Random, local: Path, remote: Path) -> None:
    """SIGKILL the process at a random moment: after a random delay, or as the k-th checkpoint write (local) or
    checkpoint upload (remote) of this process is under way."""
    if mode == "random":
        time.sleep(rng.uniform(2.0, 14.0))
    else:
        folder, wanted, seen = (local if mode == "save" else remote), rng.randint(1, 3), set()
        seen_before = partials(folder)
        deadline = time.monotonic() + 90
        while len(seen) < wanted:
            assert proc.poll() is None and time.monotonic() < deadline, f"no {mode} to kill in"
            seen |= partials(folder) - seen_before
            time.sleep(0.001)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_twenty_kills_lose_at_most_a_save_interval_and_end_with_the_uninterrupted_weights(tmp_path):
    rng = random.Random(8)
    root, remote = tmp_path / "out", tmp_path / "drive"
    local_ckpts, remote_ckpts = root / "checkpoints" / UNET, remote / "checkpoints" / UNET
    reference = start(tmp_path / "whole", *KILLED, out=tmp_path / "whole.log")  # in parallel: 2 cores
    modes = ["random"] * 7 + ["save"] * 7 + ["upload"] * 6
    rng.shuffle(modes)
    resumed, saved, cut_writes, cut_uploads = 0, 0, 0, 0
    for i, mode in enumerate(modes):
        log = tmp_path / f"kill{i:02d}.log"
        before = partials(local_ckpts), partials(remote_ckpts)
        proc = start(root, *KILLED, f"storage.remote={remote}", out=log)
        kill_when(proc, mode, rng, local_ckpts, remote_ckpts)
        out = log.read_text()
        found = re.search(r"Resuming from episode (\d+)", out)
        if found:  # the episode count never goes backwards, and no save that finished is lost
            assert int(found.group(1)) >= max(resumed, saved), (i, mode, out[-2000:])
            resumed = int(found.group(1))
        assert "skipping checkpoint" not in out, out[-2000:]  # no damaged file was ever there to skip
        cut_writes += bool(partials(local_ckpts) - before[0])
        cut_uploads += bool(partials(remote_ckpts) - before[1])
        for ckpt in local_ckpts.glob("*.ckpt"):  # every file under a checkpoint name is whole, after any kill
            assert isinstance(load(ckpt)["global_step"], int), ckpt
        remote_complete(remote_ckpts, strict=False)
        saved = max([saved] + [e["episode"] for e in read_events(str(root / "logs" / UNET)) if e["event"] == "save"])
    assert cut_writes >= 2 and cut_uploads >= 2, (cut_writes, cut_uploads)  # the kills did land mid-write
    assert resumed >= 8, resumed  # the kills were spread over the run, not all at start-up

    final = run_train(root, *KILLED, f"storage.remote={remote}", timeout=600)
    assert final.returncode == 0 and f"Completed {EPISODES}/{EPISODES}" in final.stdout, final.stdout[-3000:]
    assert "Taking over the lock" in final.stdout and not [p for p in os.listdir(local_ckpts) if p.startswith(".")]
    assert reference.wait(timeout=600) == 0, (tmp_path / "whole.log").read_text()[-3000:]
    a = load(tmp_path / "whole" / "checkpoints" / UNET / "last.ckpt")
    b = load(local_ckpts / "last.ckpt")
    assert a["global_step"] == b["global_step"] == EPISODES
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert remote_complete(remote_ckpts) == EPISODES


# --- a full local disk ------------------------------------------------------------------------------------------
def test_a_save_that_fills_the_disk_keeps_the_previous_checkpoint_whole_unlike_lightnings_own(small_disk):
    from lightning.fabric.plugins import TorchCheckpointIO

    from atheria.callbacks.tiered import AtomicCheckpointIO

    too_big = {"w": torch.zeros(5_000_000)}  # 20 MB on a 16 MB disk
    for io, survives in ((AtomicCheckpointIO(), True), (TorchCheckpointIO(), False)):
        path = small_disk / f"{type(io).__name__}.ckpt"
        io.save_checkpoint({"global_step": 1}, path)
        with pytest.raises(OSError, match="No space left"):
            io.save_checkpoint(too_big, path)
        try:
            whole = load(path)["global_step"] == 1
        except Exception:  # Lightning's save copied its /tmp file into the final name until the disk was full
            whole = False
        assert whole is survives, type(io).__name__
        assert [p.name for p in small_disk.iterdir()] == [path.name]  # and left no temp file here
        path.unlink()


def test_a_full_local_disk_stops_with_one_line_keeping_last_and_remote_valid(tmp_path, small_disk):
    root, remote = small_disk / "out", tmp_path / "drive"
    run = ("model=mlp", "run.total_episodes=100000", "run.save_every=1", "run.sync_every=1", "run.monitor_every=0",
           f"storage.remote={remote}")
    proc = start(root, *run)
    wait_for(lambda: (saved_step(root / "checkpoints" / MLP) or 0) >= 5, timeout=120)  # ep000005 may be pruned
    ballast = fill(small_disk)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out[-2000:] + err[-2000:]
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    found = re.fullmatch(rf"error: local disk full at .+ \(No space left on device\); the last good checkpoint is "
                         rf"episode (\d+) \({root / 'checkpoints' / MLP / 'last.ckpt'}\); free space and run the same "
                         r"command to continue", line)
    assert found, line
    episode = int(found.group(1))
    assert episode >= 5 and load(root / "checkpoints" / MLP / "last.ckpt")["global_step"] == episode
    assert not [p for p in (root / "checkpoints" / MLP).iterdir() if "partial" in p.name]
    assert remote_complete(remote / "checkpoints" / MLP, strict=False) is not None, out[-3000:] + err[-3000:]
    ballast.unlink()  # space returns: the same command continues from the last good checkpoint
    again = run_train(root, *run, f"run.total_episodes={episode + 2}")
    assert again.returncode == 0 and f"Resuming from episode {episode}" in again.stdout, again.stdout[-2000:]
    assert remote_complete(remote / "checkpoints" / MLP) == episode + 2


# --- a remote over quota ----------------------------------------------------------------------------------------
class QuotaMirror(mirror_module.Mirror):
    """The real Mirror, with quick retries; once it has warned of the outage, the next submit finds space returned."""

    made: list["QuotaMirror"] = []
    remote: faults.Faults

    def __init__(self, *args, **kwargs):
        self.said: list[str] = []
        kwargs.update(backoff=0.05, retries=2, say=lambda line: (self.said.append(line), print(line)))
        super().__init__(*args, **kwargs)
        QuotaMirror.made.append(self)

    def submit(self, *args, **kwargs):
        if any("training goes on" in line for line in self.said):
            self.remote.quota = None
        super().submit(*args, **kwargs)


def test_a_remote_over_quota_warns_training_goes_on_and_the_mirror_catches_up(tmp_path, monkeypatch, capsys):
    backing = tmp_path / "drive"
    QuotaMirror.made.clear()
    QuotaMirror.remote = faults.faulty(f"quota-{tmp_path.name}", str(backing), quota=4096)  # the start probe fits
    monkeypatch.setattr(kit_module, "Mirror", QuotaMirror)  # where the session kit builds its mirror
    run = ("model=mlp", "qca.steps=20", "run.total_episodes=40", "run.save_every=1", "run.sync_every=1",
           "run.monitor_every=0", f"storage.remote={QuotaMirror.remote.url}")
    assert train_in_process(tmp_path / "out", *run) == 0
    out = capsys.readouterr().out
    (mirror,) = QuotaMirror.made
    assert mirror.failures >= 1 and out.count("training goes on") == 1, out
    assert "quota of 4096 bytes exceeded" in out and "reachable again" in out, out
    assert "Completed 40/40" in out  # that a slow remote never blocks training: test_remote_faults
    assert remote_complete(backing / "checkpoints" / MLP) == 40


# --- two processes on one experiment ----------------------------------------------------------------------------
def test_a_second_process_on_the_same_experiment_is_refused_naming_the_first(tmp_path):
    root = tmp_path / "out"
    run = ("model=mlp", "run.total_episodes=100000", "run.save_every=5", "run.monitor_every=0")
    first = start(root, *run)
    lock = root / "checkpoints" / MLP / ".lock"
    wait_for(lambda: (root / "checkpoints" / MLP / "ep000005.ckpt").exists(), timeout=120)
    owner = json.loads(lock.read_text())
    second = run_train(root, *run)
    assert second.returncode == 2, second.stdout[-2000:] + second.stderr[-2000:]
    (line,) = [x for x in second.stderr.splitlines() if x.strip()]
    assert line.startswith(f"error: experiment {MLP} is in use by pid {first.pid} on host {owner['host']} since "
                           f"{owner['since']} (lock {lock});"), line
    assert "Resuming" not in second.stdout and first.poll() is None  # refused before any work; the first goes on
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=120)
    assert first.returncode == 0 and not lock.exists()  # released at exit
    step = load(root / "checkpoints" / MLP / "last.ckpt")["global_step"]
    third = run_train(root, *run, f"run.total_episodes={step + 2}")
    assert third.returncode == 0 and f"Resuming from episode {step}" in third.stdout
    assert "Taking over" not in third.stdout and not lock.exists()
