"""The experiment lock: one owner at a time, named when refused, taken over once its owner is gone."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from atheria.storage.lock import LOCK_NAME, ExperimentLock, LockHeld, Owner, gone_reason


def write_lock(directory, **fields):
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "process_start": 0.0, "since": "then",
             "heartbeat": time.time(), "token": "other", **fields}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / LOCK_NAME).write_text(json.dumps(owner))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_held_lock_refuses_a_second_owner_naming_pid_host_and_file(tmp_path):
    first = ExperimentLock(str(tmp_path / "ckpt"), "exp", say=lambda s: None)
    first.acquire()
    try:
        held = json.loads((tmp_path / "ckpt" / LOCK_NAME).read_text())
        assert held["pid"] == os.getpid() and held["host"] == socket.gethostname()
        with pytest.raises(LockHeld) as refused:
            ExperimentLock(str(tmp_path / "ckpt"), "exp").acquire()
        message = str(refused.value)
        assert f"experiment exp is in use by pid {os.getpid()} on host {socket.gethostname()} since" in message
        assert str(tmp_path / "ckpt" / LOCK_NAME) in message and "\n" not in message
    finally:
        first.release()
    assert not (tmp_path / "ckpt" / LOCK_NAME).exists()
    assert os.listdir(tmp_path) == []  # the dirs made only for the lock are gone too


def test_release_keeps_dirs_that_hold_files(tmp_path):
    lock = ExperimentLock(str(tmp_path / "ckpt"), "exp")
    lock.acquire()
    (tmp_path / "ckpt" / "last.ckpt").write_bytes(b"x")
    lock.release()
    assert os.listdir(tmp_path / "ckpt") == ["last.ckpt"]


@pytest.mark.parametrize("fields,reason", [
    ({"pid": dead_pid()}, "is gone"),
    ({"process_start": 1.0}, "is now another process"),  # our pid, but started at another time: a reused pid
    ({"host": "elsewhere", "heartbeat": time.time() - 3600}, "no heartbeat for"),
])
def test_a_lock_whose_owner_is_gone_is_taken_over_with_a_note(tmp_path, fields, reason):
    write_lock(tmp_path, **fields)
    said = []
    lock = ExperimentLock(str(tmp_path), "exp", say=said.append)
    lock.acquire()
    assert len(said) == 1 and said[0].startswith("Taking over the lock of experiment exp") and reason in said[0]
    assert json.loads((tmp_path / LOCK_NAME).read_text())["token"] == lock.owner.token
    lock.release()


def test_another_hosts_fresh_lock_is_respected(tmp_path):
    write_lock(tmp_path, host="elsewhere", pid=1)
    with pytest.raises(LockHeld, match="pid 1 on host elsewhere"):
        ExperimentLock(str(tmp_path), "exp").acquire()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["host"] == "elsewhere"


def test_an_unreadable_lock_is_taken_over(tmp_path):
    (tmp_path / LOCK_NAME).write_text("{not json")
    said = []
    lock = ExperimentLock(str(tmp_path), "exp", say=said.append)
    lock.acquire()
    assert "unreadable" in said[0]
    lock.release()


def test_the_heartbeat_refreshes_the_lock_and_spares_a_new_owners_lock(tmp_path):
    lock = ExperimentLock(str(tmp_path), "exp", heartbeat_s=0.05)
    lock.acquire()
    first = json.loads((tmp_path / LOCK_NAME).read_text())["heartbeat"]
    time.sleep(0.3)
    assert json.loads((tmp_path / LOCK_NAME).read_text())["heartbeat"] > first
    write_lock(tmp_path, token="new-owner")  # taken over by another host while this owner was stalled
    time.sleep(0.2)
    lock.release()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["token"] == "new-owner"
    assert sorted(os.listdir(tmp_path)) == [LOCK_NAME]  # no temp files left behind


def test_gone_reason_trusts_a_live_local_process_whatever_its_heartbeat():
    me = ExperimentLock("/nonexistent", "exp").owner
    old = Owner(**{**me.__dict__, "heartbeat": 0.0})
    assert gone_reason(old, stale_after_s=1.0) is None
    assert gone_reason(old, stale_after_s=1.0, host="another-host") is not None
