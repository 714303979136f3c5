"""Mirror and finder against three real remotes: a local dir (a Drive mount), memory://, and a GCS emulator."""
from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path

import fsspec
import pytest
import torch

from atheria.storage.finder import find_latest, list_candidates
from atheria.storage.manifest import Manifest, file_entry, read_manifest
from atheria.storage.mirror import Mirror
from atheria.storage.paths import join

EXP = "checkpoints/exp"


@pytest.fixture(params=["local", "memory", "gcs"])
def remote(request, tmp_path) -> str:
    """A fresh durable root on each kind of remote."""
    if request.param == "local":
        return str(tmp_path / "durable")
    if request.param == "memory":
        return f"memory://remote-{uuid.uuid4().hex[:8]}"
    return f"{request.getfixturevalue('gcs_root')}/{uuid.uuid4().hex[:8]}"


def save_ckpt(root: Path, name: str, step: int) -> Path:
    """A tiny Lightning-like checkpoint under root/checkpoints/exp."""
    path = root / EXP / name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": step, "state_dict": {"w": torch.full((8, 8), float(step))}}, path)
    return path


def remote_sha(url: str) -> str:
    """sha256 of a remote file's bytes."""
    fs, path = fsspec.core.url_to_fs(url)
    return hashlib.sha256(fs.cat_file(path)).hexdigest()


def mirror_up(local: Path, remote: str, steps: dict[str, int], delete: tuple[str, ...] = (),
              mirror: Mirror | None = None) -> Manifest:
    """Save checkpoints locally, mirror them with a manifest naming them all, and wait for the upload."""
    for name, step in steps.items():
        save_ckpt(local, name, step)
    paths = sorted((local / EXP).glob("*.ckpt"))
    files = {p.name: file_entry(p, torch.load(p, weights_only=True)["global_step"]) for p in paths}
    newest = max(files, key=lambda n: files[n].step)
    manifest = Manifest(step=files[newest].step, checkpoint=newest, files=files)
    own = mirror or Mirror(str(local), remote, retries=1, backoff=0.01, say=print)
    own.submit([f"{EXP}/{n}" for n in steps], manifest=manifest, manifest_dir=EXP,
               delete=[f"{EXP}/{d}" for d in delete])
    assert own.wait(30)
    if mirror is None:
        own.close(5)
    return manifest


def test_mirror_uploads_files_then_manifest(tmp_path, remote: str) -> None:
    local = tmp_path / "local"
    mirror = Mirror(str(local), remote, retries=1, backoff=0.01)
    manifest = mirror_up(local, remote, {"last.ckpt": 20, "best-1.ckpt": 10}, mirror=mirror)
    assert read_manifest(join(remote, EXP)) == manifest
    for name, entry in manifest.files.items():
        assert remote_sha(join(remote, EXP, name)) == entry.sha256
    assert mirror.uploads == 2 and mirror.bytes_uploaded == sum(e.size for e in manifest.files.values())
    mirror.submit([f"{EXP}/last.ckpt"], manifest=manifest, manifest_dir=EXP)
    assert mirror.wait(30) and mirror.uploads == 2  # unchanged bytes are not sent again
    assert mirror.close(5) and mirror.last_job_seconds is not None


def test_mirror_deletes_but_never_a_file_the_manifest_names(tmp_path, remote: str) -> None:
    local = tmp_path / "local"
    mirror_up(local, remote, {"last.ckpt": 10, "best-a.ckpt": 5, "best-b.ckpt": 8})
    (local / EXP / "best-a.ckpt").unlink()
    manifest = mirror_up(local, remote, {"last.ckpt": 20}, delete=("best-a.ckpt", "best-b.ckpt"))
    names = sorted(c.url.rsplit("/", 1)[1] for c in list_candidates(join(remote, EXP), "remote"))
    assert names == ["best-b.ckpt", "last.ckpt"] == sorted(manifest.files)


def test_finder_downloads_a_remote_only_checkpoint(tmp_path, remote: str) -> None:
    local = tmp_path / "local"
    manifest = mirror_up(local, remote, {"last.ckpt": 30, "best-1.ckpt": 10})
    shutil.rmtree(local)
    path, cand = find_latest(str(local / EXP), join(remote, EXP), say=print)
    assert path == str(local / EXP / "last.ckpt") and cand.source == "remote" and cand.step == 30
    assert torch.load(path, weights_only=True)["global_step"] == 30
    assert read_manifest(str(local / EXP)).files["last.ckpt"] == manifest.files["last.ckpt"]
    path, cand = find_latest(str(local / EXP), join(remote, EXP), say=print)
    assert cand.source == "local" and cand.step == 30  # ties prefer the local copy: no second download


def test_finder_falls_back_past_a_damaged_remote_checkpoint(tmp_path, remote: str) -> None:
    local = tmp_path / "local"
    mirror_up(local, remote, {"old.ckpt": 10, "last.ckpt": 30})
    shutil.rmtree(local)
    save_ckpt(local, "local.ckpt", 20)
    fs, path = fsspec.core.url_to_fs(join(remote, EXP, "last.ckpt"))
    data = bytearray(fs.cat_file(path))
    data[len(data) // 2] ^= 0xFF
    fs.pipe_file(path, bytes(data))
    said: list[str] = []
    found, cand = find_latest(str(local / EXP), join(remote, EXP), say=said.append)
    assert cand.source == "local" and cand.step == 20
    assert len(said) == 1 and "last.ckpt" in said[0] and "sha256" in said[0]
    assert sorted(p.name for p in (local / EXP).iterdir()) == ["local.ckpt"]  # nothing damaged was placed
