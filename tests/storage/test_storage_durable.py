"""A durable root where no durable storage is (an unmounted Drive, a mistyped folder) is refused before the remote
probe writes anything; a mounted Drive, or a folder whose parent exists, is accepted and its root created."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from atheria.errors import ConfigError
from atheria.runner import _check_remote
from atheria.storage import drive
from atheria.storage.durable import not_durable
from atheria.storage.layout import Layout


@pytest.fixture
def drive_mount(tmp_path, monkeypatch) -> Path:
    """A stand-in for /content/drive: a plain folder, as `mkdir` (or a run without drive.mount) leaves it."""
    mount = tmp_path / "content" / "drive"
    mount.mkdir(parents=True)
    monkeypatch.setattr(drive, "DRIVE_MOUNT", str(mount))
    return mount


@pytest.fixture
def mounted(drive_mount) -> Path:
    """The stand-in made a real mount point (a tmpfs), with MyDrive in it as a mounted Drive has; unmounted after."""
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(drive_mount)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root and mount permission)")
    (drive_mount / "MyDrive").mkdir()
    yield drive_mount
    subprocess.run(["umount", "-l", str(drive_mount)], check=False)


def test_a_drive_folder_that_is_not_mounted_is_refused_and_nothing_is_created(drive_mount):
    (drive_mount / "MyDrive").mkdir()  # even with the folders a Drive would have: a folder is not a mount
    root = drive_mount / "MyDrive" / "Atheria"
    with pytest.raises(ConfigError) as err:
        _check_remote(Layout(str(root), "exp"))
    message = str(err.value)
    assert message.startswith(f"storage.remote='{root}' ") and "\n" not in message
    assert f"drive.mount('{drive_mount}')" in message and "Google Drive is not mounted" in message
    assert not root.exists() and [p.name for p in drive_mount.iterdir()] == ["MyDrive"]


def test_a_mounted_drive_is_accepted_and_the_root_created(mounted):
    root = mounted / "MyDrive" / "Atheria"
    assert not_durable(str(root)) is None
    _check_remote(Layout(str(root), "exp"))
    assert root.is_dir() and list(root.iterdir()) == []  # created, and the probe cleaned up after itself


def test_a_root_whose_parent_exists_is_accepted_and_created(tmp_path):
    root = tmp_path / "durable"
    assert not_durable(str(root)) is None and not_durable(f"file://{root}") is None
    _check_remote(Layout(str(root), "exp"))
    assert root.is_dir()


def test_a_root_whose_parent_is_missing_is_refused_naming_the_parent(tmp_path):
    root = tmp_path / "nonexistent" / "dir" / "atheria"
    with pytest.raises(ConfigError) as err:
        _check_remote(Layout(f"file://{root}", "exp"))
    assert f"below {root.parent}, which does not exist" in str(err.value) and "accepted:" in str(err.value)
    assert not (tmp_path / "nonexistent").exists()


def test_urls_are_left_to_the_write_probe():
    assert not_durable("gs://bucket/atheria") is None and not_durable("memory://x/y/z") is None
