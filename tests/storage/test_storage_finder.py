"""finder: newest valid checkpoint by step, safe loading, and fallback past damaged files."""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
import torch

from atheria.storage.finder import CorruptCheckpoint, NoTrustedCheckpoint, checkpoint_step, find_latest, load_checkpoint
from atheria.storage.manifest import Manifest, file_entry, write_manifest
from tests import faults


def save_ckpt(path: Path, step: int) -> Path:
    """A tiny Lightning-like checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": step, "state_dict": {"w": torch.full((8, 8), float(step))}}, path)
    return path


class Marker:
    """A pickle that would create a marker file when unpickled without weights_only."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_newest_by_step_not_by_file_time(tmp_path) -> None:
    save_ckpt(tmp_path / "epoch=9.ckpt", 90)
    save_ckpt(tmp_path / "last.ckpt", 40)
    later = time.time() + 100
    os.utime(tmp_path / "last.ckpt", (later, later))
    path, cand = find_latest(str(tmp_path), None, say=lambda _: None)
    assert path == str(tmp_path / "epoch=9.ckpt") and cand.step == 90 and cand.source == "local"


def test_truncated_newest_falls_back_with_a_message(tmp_path) -> None:
    save_ckpt(tmp_path / "a.ckpt", 10)
    data = save_ckpt(tmp_path / "b.ckpt", 20).read_bytes()
    (tmp_path / "b.ckpt").write_bytes(data[: len(data) // 2])
    said: list[str] = []
    path, cand = find_latest(str(tmp_path), None, say=said.append)
    assert cand.step == 10 and path.endswith("a.ckpt")
    assert len(said) == 1 and "b.ckpt" in said[0] and "\n" not in said[0]


def test_flipped_bytes_are_caught_by_the_manifest_checksum(tmp_path) -> None:
    files = {n: file_entry(save_ckpt(tmp_path / n, s), s) for n, s in [("a.ckpt", 10), ("b.ckpt", 20)]}
    write_manifest(str(tmp_path), Manifest(step=20, checkpoint="b.ckpt", files=files))
    data = bytearray((tmp_path / "b.ckpt").read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 8):
        data[i] ^= 0xFF
    (tmp_path / "b.ckpt").write_bytes(bytes(data))
    load_checkpoint(tmp_path / "b.ckpt", crc=False)  # flipped tensor bytes still load: only a checksum can tell
    said: list[str] = []
    path, cand = find_latest(str(tmp_path), None, say=said.append)
    assert cand.step == 10 and cand.entry == files["a.ckpt"]
    assert len(said) == 1 and "b.ckpt" in said[0] and "sha256" in said[0]


def test_a_save_newer_than_its_local_manifest_entry_is_accepted(tmp_path) -> None:
    files = {n: file_entry(save_ckpt(tmp_path / n, s), s) for n, s in [("a.ckpt", 10), ("last.ckpt", 20)]}
    write_manifest(str(tmp_path), Manifest(step=20, checkpoint="last.ckpt", files=files))
    save_ckpt(tmp_path / "last.ckpt", 25)  # killed after the save, before the manifest moved
    said: list[str] = []
    path, _ = find_latest(str(tmp_path), None, say=said.append)
    assert path.endswith("last.ckpt") and checkpoint_step(path) == 25 and said == []


def test_malicious_pickle_is_refused_and_never_runs(tmp_path) -> None:
    marker = tmp_path / "pwned"
    torch.save({"global_step": 99, "state_dict": {}, "payload": Marker(marker)}, tmp_path / "evil.ckpt")
    save_ckpt(tmp_path / "good.ckpt", 1)
    with pytest.raises(CorruptCheckpoint, match="GLOBAL") as info:
        load_checkpoint(tmp_path / "evil.ckpt")
    assert "\n" not in str(info.value)
    said: list[str] = []
    path, cand = find_latest(str(tmp_path), None, say=said.append)
    assert path.endswith("good.ckpt") and any("evil.ckpt" in line for line in said)
    assert not marker.exists()


def test_non_checkpoints_are_corrupt(tmp_path) -> None:
    (tmp_path / "text.ckpt").write_text("hello")
    torch.save([1, 2, 3], tmp_path / "list.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "nostep.ckpt")
    for name in ["text.ckpt", "list.ckpt", "nostep.ckpt"]:
        with pytest.raises(CorruptCheckpoint):
            checkpoint_step(tmp_path / name)
    with pytest.raises(NoTrustedCheckpoint, match="none could be verified") as info:
        find_latest(str(tmp_path), None, say=lambda _: None)
    assert all(name in str(info.value) for name in ["text.ckpt", "list.ckpt", "nostep.ckpt"])
    assert "\n" not in str(info.value)


def test_empty_or_missing_dirs_find_nothing(tmp_path) -> None:
    assert find_latest(str(tmp_path / "absent"), str(tmp_path / "also-absent"), say=print) is None


def test_unreachable_remote_falls_back_to_local(tmp_path) -> None:
    down = faults.faulty(f"down-{uuid.uuid4().hex[:8]}", str(tmp_path / "remote"), fail_always=True)
    save_ckpt(tmp_path / "local" / "last.ckpt", 3)
    said: list[str] = []
    path, cand = find_latest(str(tmp_path / "local"), f"{down.url}/checkpoints/exp", say=said.append)
    assert cand.source == "local" and cand.step == 3
    assert len(said) == 1 and "unreachable" in said[0] and down.url in said[0]


def test_a_remote_reused_name_uploaded_before_its_manifest_is_accepted(tmp_path) -> None:
    remote, local = tmp_path / "remote", tmp_path / "local"
    files = {n: file_entry(save_ckpt(remote / n, s), s) for n, s in [("ep000010.ckpt", 10), ("last.ckpt", 20)]}
    write_manifest(str(remote), Manifest(step=20, checkpoint="last.ckpt", files=files))
    save_ckpt(remote / "last.ckpt", 30)  # the mirror re-uploaded last.ckpt; killed before latest.json moved
    said: list[str] = []
    path, cand = find_latest(str(local), f"file://{remote}", say=said.append)
    assert cand.source == "remote" and checkpoint_step(path) == 30 and said == []
    again, _ = find_latest(str(local), None, say=said.append)  # the local manifest now describes the new bytes
    assert checkpoint_step(again) == 30 and said == []


def flip(path: Path) -> None:
    """Flip a few bytes in the middle of a file (tensor data), leaving a zip that torch.load still reads."""
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 4):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_flipped_bytes_in_a_checkpoint_no_manifest_lists_are_caught_by_the_zip_crc(tmp_path) -> None:
    save_ckpt(tmp_path / "ep000010.ckpt", 10)
    flip(save_ckpt(tmp_path / "ep000020.ckpt", 20))
    with pytest.raises(CorruptCheckpoint, match="CRC mismatch"):
        checkpoint_step(tmp_path / "ep000020.ckpt")
    said: list[str] = []
    path, cand = find_latest(str(tmp_path), None, say=said.append)
    assert cand.step == 10 and path.endswith("ep000010.ckpt")
    assert len(said) == 1 and "ep000020.ckpt" in said[0] and "CRC" in said[0]


def test_every_local_checkpoint_damaged_is_refused_not_a_fresh_start(tmp_path) -> None:
    for step in (5, 10):
        flip(save_ckpt(tmp_path / f"ep{step:06d}.ckpt", step))
    (tmp_path / "last.ckpt").write_bytes((tmp_path / "ep000010.ckpt").read_bytes()[:100])
    with pytest.raises(NoTrustedCheckpoint) as info:
        find_latest(str(tmp_path), None, say=lambda _: None)
    assert "ep000010.ckpt" in str(info.value) and "\n" not in str(info.value)


def remote_with_lost_manifest(remote: Path, text: bytes | None) -> None:
    """A remote dir of seven good checkpoints whose latest.json is deleted (None) or replaced by `text`."""
    files = {f"ep{s:06d}.ckpt": file_entry(save_ckpt(remote / f"ep{s:06d}.ckpt", s), s) for s in range(5, 30, 5)}
    files["last.ckpt"] = file_entry(save_ckpt(remote / "last.ckpt", 25), 25)
    files["best-final.ckpt"] = file_entry(save_ckpt(remote / "best-final.ckpt", 20), 20)
    write_manifest(str(remote), Manifest(step=25, checkpoint="last.ckpt", files=files))
    if text is None:
        (remote / "latest.json").unlink()
    else:
        (remote / "latest.json").write_bytes(text)


@pytest.mark.parametrize("text", [None, b'{"step": 25, "checkpo', b'{"step": 25, "checkpoint": "x", "files": {}}'])
def test_a_lost_or_garbled_remote_manifest_resumes_from_the_newest_remote_checkpoint(tmp_path, text) -> None:
    remote, local = tmp_path / "remote", tmp_path / "local"
    remote_with_lost_manifest(remote, text)
    said: list[str] = []
    path, cand = find_latest(str(local), f"file://{remote}", say=said.append)
    assert cand.source == "remote" and cand.step == 25 and checkpoint_step(path) == 25 and said == []
    # only the files that could be the newest were fetched (no step in the name, or ep000025): not ep5..ep20
    kept = set(os.listdir(local)) - {"latest.json"}
    assert len(kept) == 1 and kept <= {"last.ckpt", "ep000025.ckpt"}, kept


def test_an_unlisted_remote_file_is_checked_only_when_nothing_listed_verifies(tmp_path) -> None:
    remote, local = tmp_path / "remote", tmp_path / "local"
    listed = {"ep000020.ckpt": file_entry(save_ckpt(remote / "ep000020.ckpt", 20), 20)}
    write_manifest(str(remote), Manifest(step=20, checkpoint="ep000020.ckpt", files=listed))
    save_ckpt(remote / "ep000010.ckpt", 10)  # an older file the manifest no longer names
    flip(remote / "ep000020.ckpt")
    said: list[str] = []
    path, cand = find_latest(str(local), f"file://{remote}", say=said.append)
    assert cand.step == 10 and path.endswith("ep000010.ckpt") and "sha256" in said[0]
    assert not [n for n in os.listdir(local) if n.startswith(".")]  # no temp download left behind
