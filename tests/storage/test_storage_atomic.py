"""atomic: readers never see a partial file under its final name, and failed uploads leave nothing behind."""
from __future__ import annotations

import errno
import os
import threading
import uuid

import fsspec
import pytest

from atheria.storage.atomic import get_file_atomic, link_atomic, put_file_atomic, sha256_file, write_bytes_atomic
from tests import faults


def _slow_remote(tmp_path, **settings) -> faults.Faults:
    """A faulty:// remote over a fresh directory."""
    root = tmp_path / "durable"
    root.mkdir()
    return faults.faulty(f"atomic-{uuid.uuid4().hex[:8]}", str(root), **settings)


def _watch_final(fs, final: str, dir_path: str, expected: bytes,
                 stop: threading.Event) -> tuple[threading.Thread, dict[str, int]]:
    """Poll the final name until stopped: count partial and complete reads, and sightings of the temp file."""
    seen = {"partial_reads": 0, "temp_seen": 0, "complete_reads": 0}

    def poll() -> None:
        while not stop.is_set():
            if any(".partial-" in name for name in fs.ls(dir_path, detail=False)):
                seen["temp_seen"] += 1
            if fs.exists(final):
                data = fs.cat_file(final)
                seen["complete_reads" if data == expected else "partial_reads"] += 1

    thread = threading.Thread(target=poll)
    thread.start()
    return thread, seen


@pytest.mark.parametrize("atomic", [True, False], ids=["atomic", "plain-put-control"])
def test_reader_never_sees_partial_content_during_slow_upload(tmp_path, atomic: bool) -> None:
    remote = _slow_remote(tmp_path, bandwidth=400_000)
    payload = os.urandom(200_000)
    local = tmp_path / "last.ckpt"
    local.write_bytes(payload)
    fs, _ = fsspec.core.url_to_fs(remote.url)
    final, dir_path = f"{remote.name}/ckpts/last.ckpt", f"{remote.name}/ckpts"
    fs.makedirs(dir_path, exist_ok=True)
    stop = threading.Event()
    watcher, seen = _watch_final(fs, final, dir_path, payload, stop)
    if atomic:
        put_file_atomic(local, f"{remote.url}/ckpts/last.ckpt")
    else:
        fs.put_file(str(local), final)
    stop.set()
    watcher.join()
    assert fs.cat_file(final) == payload
    if atomic:
        assert seen["partial_reads"] == 0 and seen["temp_seen"] > 0
        assert sorted(os.listdir(tmp_path / "durable" / "ckpts")) == ["last.ckpt"]
    else:  # the control shows the watcher can catch a partial file when the write is not atomic
        assert seen["partial_reads"] > 0


@pytest.mark.parametrize("settings, code", [({"fail_first": 1}, errno.EIO), ({"quota": 50_000}, errno.ENOSPC)])
def test_failed_upload_leaves_no_final_file_and_no_temp(tmp_path, settings: dict, code: int) -> None:
    remote = _slow_remote(tmp_path, **settings)
    local = tmp_path / "last.ckpt"
    local.write_bytes(os.urandom(100_000))
    with pytest.raises(OSError) as info:
        put_file_atomic(local, f"{remote.url}/ckpts/last.ckpt")
    assert info.value.errno == code
    assert os.listdir(tmp_path / "durable" / "ckpts") == []


def test_local_writes_replace_whole_files(tmp_path) -> None:
    target = tmp_path / "drive" / "latest.json"
    write_bytes_atomic(str(target), b"old")
    write_bytes_atomic(f"file://{target}", b"new")
    assert target.read_bytes() == b"new" and os.listdir(target.parent) == ["latest.json"]
    source = tmp_path / "w.bin"
    source.write_bytes(os.urandom(3000))
    put_file_atomic(source, str(tmp_path / "drive" / "w.bin"))
    assert sha256_file(tmp_path / "drive" / "w.bin") == sha256_file(source)


def test_download_is_atomic_and_complete(tmp_path) -> None:
    url = f"memory://atomic-{uuid.uuid4().hex[:8]}/last.ckpt"
    payload = os.urandom(5000)
    write_bytes_atomic(url, payload)
    get_file_atomic(url, tmp_path / "local" / "last.ckpt")
    assert (tmp_path / "local" / "last.ckpt").read_bytes() == payload
    assert os.listdir(tmp_path / "local") == ["last.ckpt"]


def test_link_atomic_names_the_same_bytes_twice_and_a_later_replace_of_either_leaves_the_other(tmp_path):
    src, dst = tmp_path / "ep000006.ckpt", tmp_path / "last.ckpt"
    write_bytes_atomic(str(src), b"episode 6")
    write_bytes_atomic(str(dst), b"episode 4")
    assert link_atomic(str(src), str(dst))
    assert os.path.samefile(src, dst) and dst.read_bytes() == b"episode 6"
    write_bytes_atomic(str(src), b"episode 8")  # files are replaced, never rewritten: the link keeps its bytes
    assert dst.read_bytes() == b"episode 6"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep000006.ckpt", "last.ckpt"]


def test_link_atomic_without_hard_links_leaves_the_target_as_it_was(tmp_path, monkeypatch):
    src, dst = tmp_path / "a", tmp_path / "b"
    src.write_bytes(b"new")
    dst.write_bytes(b"old")

    def no_links(*args):
        raise OSError(errno.EPERM, "Operation not permitted")  # what a FUSE mount such as Drive answers

    monkeypatch.setattr(os, "link", no_links)
    assert not link_atomic(str(src), str(dst))
    assert dst.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
