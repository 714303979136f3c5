"""Mirror under a slow or failing remote: never blocks, merges queued work, publishes only verified files."""
from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from pathlib import Path

import fsspec
import torch

from atheria.storage.manifest import Manifest, file_entry, read_manifest
from atheria.storage.mirror import Mirror
from tests import faults
from tests.helpers import fill

EXP = "checkpoints/exp"


def faulty_remote(tmp_path: Path, **settings) -> faults.Faults:
    """A faulty:// remote over a fresh directory."""
    (tmp_path / "durable").mkdir()
    return faults.faulty(f"mirror-{uuid.uuid4().hex[:8]}", str(tmp_path / "durable"), **settings)


def save(local: Path, name: str, step: int, size: int = 1000) -> Manifest:
    """Save a checkpoint of about `size` bytes and return a manifest naming it."""
    path = local / EXP / name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": step, "state_dict": {"w": torch.rand(size // 4)}}, path.with_suffix(".tmp"))
    os.replace(path.with_suffix(".tmp"), path)  # replaced, never rewritten in place, as every writer of ours does
    return Manifest(step=step, checkpoint=name, files={name: file_entry(path, step)})


def remote_sha(remote: faults.Faults, rel: str) -> str:
    """sha256 of a file as stored under the faulty remote's directory."""
    return hashlib.sha256((Path(remote.root) / rel).read_bytes()).hexdigest()


def litter(remote: faults.Faults) -> list[str]:
    """Leftover temp files of interrupted uploads anywhere under the remote."""
    return [name for _, _, names in os.walk(remote.root) for name in names if ".partial-" in name]


def test_submit_returns_long_before_the_upload_ends(tmp_path) -> None:
    remote = faulty_remote(tmp_path, bandwidth=1_000_000, latency=0.01)
    manifest = save(tmp_path / "local", "last.ckpt", 5, size=300_000)
    mirror = Mirror(str(tmp_path / "local"), remote.url, retries=1, backoff=0.01)
    start = time.perf_counter()
    mirror.submit([f"{EXP}/last.ckpt"], manifest=manifest, manifest_dir=EXP)
    submit_seconds = time.perf_counter() - start
    assert mirror.close(30)
    assert mirror.last_job_seconds > 0.25
    assert submit_seconds < 0.05 * mirror.last_job_seconds
    assert read_manifest(f"{remote.url}/{EXP}") == manifest


def test_quick_submits_merge_into_few_jobs_ending_in_the_last_request(tmp_path) -> None:
    remote = faulty_remote(tmp_path, bandwidth=2_000_000)
    local = tmp_path / "local"
    said: list[str] = []
    mirror = Mirror(str(local), remote.url, retries=1, backoff=0.01, say=said.append)
    submits = 20
    for step in range(submits):
        manifest = save(local, "last.ckpt", step, size=100_000)
        save(local, f"best-{step}.ckpt", step, size=1000)
        mirror.submit([f"{EXP}/last.ckpt", f"{EXP}/best-{step}.ckpt"], manifest=manifest, manifest_dir=EXP,
                      delete=[f"{EXP}/best-{step - 1}.ckpt"] if step else [])
    assert mirror.close(30)
    assert mirror.uploads <= submits // 2, f"{mirror.uploads} uploads for {submits} submits"
    assert read_manifest(f"{remote.url}/{EXP}") == manifest
    assert remote_sha(remote, f"{EXP}/last.ckpt") == manifest.files["last.ckpt"].sha256
    assert sorted(os.listdir(Path(remote.root) / EXP)) == [f"best-{submits - 1}.ckpt", "last.ckpt", "latest.json"]
    assert litter(remote) == []
    assert said == []  # a lagging mirror skipping stale manifests is routine: nothing on the console


def test_manifest_moves_only_after_every_file_is_up(tmp_path) -> None:
    remote = faulty_remote(tmp_path, fail_first=3)
    local = tmp_path / "local"
    save(local, "best.ckpt", 4)
    manifest = save(local, "last.ckpt", 5)
    manifest.files["best.ckpt"] = file_entry(local / EXP / "best.ckpt", 4)
    said: list[str] = []
    mirror = Mirror(str(local), remote.url, retries=1, backoff=0.01, say=said.append)
    mirror.submit([f"{EXP}/best.ckpt", f"{EXP}/last.ckpt"], manifest=manifest, manifest_dir=EXP)
    assert not mirror.wait(10)  # two attempts, both failed: the job waits for the next flush
    assert read_manifest(f"{remote.url}/{EXP}") is None and litter(remote) == []
    assert len(said) == 1 and "unreachable" in said[0] and "will retry" in said[0]
    assert mirror.close(10)
    assert read_manifest(f"{remote.url}/{EXP}") == manifest
    for name, entry in manifest.files.items():
        assert remote_sha(remote, f"{EXP}/{name}") == entry.sha256
    assert litter(remote) == [] and mirror.failures == 3
    assert len(said) == 2 and "reachable again" in said[1]


def test_a_remote_that_stays_down_warns_once_and_never_blocks(tmp_path) -> None:
    # Each remote call takes 0.5 s, so a failing job waits about 3 s: a submit that waited on the remote even once
    # would take a sixth of that, while freezing the checkpoint takes milliseconds on a quiet machine (with 0.02 s
    # calls, CI's load once made a submit 36 ms against a 9 ms bound; with 0.2 s calls, a fast suite beside two
    # other test runs made one 218 ms against 126 ms).
    remote = faulty_remote(tmp_path, fail_always=True, latency=0.5)
    local = tmp_path / "local"
    said: list[str] = []
    mirror = Mirror(str(local), remote.url, retries=2, backoff=0.02, say=said.append)
    slowest_submit, failing_waits = 0.0, []
    for step in range(3):
        manifest = save(local, "last.ckpt", step)
        start = time.perf_counter()
        mirror.submit([f"{EXP}/last.ckpt"], manifest=manifest, manifest_dir=EXP)
        slowest_submit = max(slowest_submit, time.perf_counter() - start)
        assert not mirror.wait(10)
        failing_waits.append(time.perf_counter() - start)
    assert slowest_submit < 0.1 * min(failing_waits), (slowest_submit, failing_waits)
    assert len(said) == 1 and remote.url in said[0] and "training goes on, will retry" in said[0]
    remote.fail_always = False
    assert mirror.close(10)
    assert read_manifest(f"{remote.url}/{EXP}") == manifest
    assert len(said) == 2 and "reachable again" in said[1]
    fs, path = fsspec.core.url_to_fs(f"{remote.url}/{EXP}/last.ckpt")
    assert torch.load(fs.open(path), weights_only=True)["global_step"] == 2


def test_the_remote_manifest_keeps_up_while_saves_come_faster_than_uploads(tmp_path) -> None:
    remote = faulty_remote(tmp_path, bandwidth=800_000)  # ~0.12 s per 100 kB checkpoint
    local = tmp_path / "local"
    mirror = Mirror(str(local), remote.url, retries=1, backoff=0.01)
    lags = []
    for step in range(1, 41):  # as a run saving and syncing every episode: ep{step}.ckpt, then last.ckpt
        kept = save(local, f"ep{step:06d}.ckpt", step, size=100_000)
        manifest = save(local, "last.ckpt", step, size=100_000)
        manifest.files.update(kept.files)
        mirror.submit([f"{EXP}/{name}" for name in sorted(manifest.files)], manifest=manifest, manifest_dir=EXP,
                      delete=[f"{EXP}/ep{step - 1:06d}.ckpt"] if step > 1 else [])
        published = read_manifest(f"{remote.url}/{EXP}")
        lags.append(step - (published.step if published else 0))
        time.sleep(0.04)  # about ten saves per job of two uploads
    assert mirror.close(30)
    assert read_manifest(f"{remote.url}/{EXP}") == manifest
    assert remote_sha(remote, f"{EXP}/last.ckpt") == manifest.files["last.ckpt"].sha256
    # the pointer trails by at most the job in flight plus the saves since it started, never the whole run
    assert max(lags[15:]) <= 25, lags
    assert not [n for n in os.listdir(local / EXP) if n.startswith(".")]  # every snapshot removed once sent


def test_a_forged_manifest_entry_is_ignored_and_the_mirror_never_raises(tmp_path) -> None:
    records: list[logging.LogRecord] = []
    warned = logging.Handler(logging.WARNING)
    warned.emit = records.append  # type: ignore[method-assign]  # an earlier run's debug log may own "atheria"
    logging.getLogger("atheria.storage.manifest").addHandler(warned)
    remote = faulty_remote(tmp_path)
    local = tmp_path / "local"
    forged = Path(remote.root) / EXP / "latest.json"
    forged.parent.mkdir(parents=True)
    forged.write_text('{"step": 3, "checkpoint": "last.ckpt", "files": {"last.ckpt": {"size": 1, "sha256": "%s", '
                      '"step": 3}, "../../x.ckpt": {"size": 1, "sha256": "%s", "step": 1}}}' % ("a" * 64, "b" * 64))
    published = read_manifest(f"{remote.url}/{EXP}")
    assert published is not None and list(published.files) == ["last.ckpt"]
    assert sum("../../x.ckpt" in r.getMessage() for r in records) == 1
    read_manifest(f"{remote.url}/{EXP}")
    assert sum("../../x.ckpt" in r.getMessage() for r in records) == 1  # once, however often it is read
    manifest = save(local, "last.ckpt", 5)
    mirror = Mirror(str(local), remote.url, retries=1, backoff=0.01)
    mirror.submit([f"{EXP}/last.ckpt"], manifest=manifest, manifest_dir=EXP, delete=[f"{EXP}/../../x.ckpt"])
    assert mirror.close(10)
    assert read_manifest(f"{remote.url}/{EXP}") == manifest



def test_a_full_local_disk_still_mirrors_the_logs_and_the_checkpoint(small_disk, tmp_path) -> None:
    """No room for the copy the mirror sends logs from: it sends the logs themselves (a full disk appends nothing), and
    the checkpoint's frozen hard link needs no room, so the remote still gets the run's last state."""
    remote = faulty_remote(tmp_path)
    local = small_disk / "local"
    manifest = save(local, "last.ckpt", 7)
    metrics = local / "logs/exp/metrics.csv"
    metrics.parent.mkdir(parents=True)
    metrics.write_text("step,loss\n" + "".join(f"{i},0.5\n" for i in range(1000)))
    fill(small_disk)
    mirror = Mirror(str(local), remote.url, retries=0, backoff=0.01)
    mirror.submit(["logs/exp/metrics.csv", f"{EXP}/last.ckpt"], manifest=manifest, manifest_dir=EXP)
    assert mirror.close(timeout=30) and mirror.failures == 0
    assert (Path(remote.root) / "logs/exp/metrics.csv").read_bytes() == metrics.read_bytes()
    assert read_manifest(f"{remote.url}/{EXP}") == manifest
    assert remote_sha(remote, f"{EXP}/last.ckpt") == manifest.files["last.ckpt"].sha256
    assert not [n for _, _, names in os.walk(local) for n in names if ".mirror-" in n]
