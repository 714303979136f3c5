"""Mirror under a slow or failing remote: never blocks, merges queued work, publishes only verified files."""
from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path

import fsspec
import torch

from atheria.storage import faults
from atheria.storage.manifest import Manifest, file_entry, read_manifest
from atheria.storage.mirror import Mirror

EXP = "checkpoints/exp"


def faulty_remote(tmp_path: Path, **settings) -> faults.Faults:
    """A faulty:// remote over a fresh directory."""
    (tmp_path / "durable").mkdir()
    return faults.faulty(f"mirror-{uuid.uuid4().hex[:8]}", str(tmp_path / "durable"), **settings)


def save(local: Path, name: str, step: int, size: int = 1000) -> Manifest:
    """Save a checkpoint of about `size` bytes and return a manifest naming it."""
    path = local / EXP / name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": step, "state_dict": {"w": torch.rand(size // 4)}}, path)
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
    remote = faulty_remote(tmp_path, fail_always=True, latency=0.02)
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
    assert slowest_submit < 0.05 * min(failing_waits)
    assert len(said) == 1 and remote.url in said[0] and "training goes on, will retry" in said[0]
    remote.fail_always = False
    assert mirror.close(10)
    assert read_manifest(f"{remote.url}/{EXP}") == manifest
    assert len(said) == 2 and "reachable again" in said[1]
    fs, path = fsspec.core.url_to_fs(f"{remote.url}/{EXP}/last.ckpt")
    assert torch.load(fs.open(path), weights_only=True)["global_step"] == 2
