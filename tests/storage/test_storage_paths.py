"""paths: URL-to-filesystem mapping and joins that cannot escape their root."""
from __future__ import annotations

import pytest
from fsspec.implementations.local import LocalFileSystem

from atheria.storage.paths import is_remote, join, url_to_fs


@pytest.mark.parametrize("part", ["..", "a/../b", "/etc/passwd", "gs://other/x", "simplecache::gs://b", "", "a//b"])
def test_join_refuses_parts_that_escape_the_root(part: str) -> None:
    with pytest.raises(ValueError) as info:
        join("gs://bucket/runs", "checkpoints", part)
    assert repr(part) in str(info.value) and "\n" not in str(info.value)


def test_join_builds_urls_and_paths() -> None:
    assert join("gs://bucket/runs", "checkpoints/exp", "last.ckpt") == "gs://bucket/runs/checkpoints/exp/last.ckpt"
    assert join("gs://bucket/runs/", "a") == "gs://bucket/runs/a"
    assert join("/data", "logs", "exp") == "/data/logs/exp"
    assert join("memory://", "x") == "memory://x"


def test_file_urls_and_plain_paths_are_local(tmp_path, monkeypatch) -> None:
    fs, path = url_to_fs("file:///tmp/x")
    assert isinstance(fs, LocalFileSystem) and path == "/tmp/x"
    monkeypatch.chdir(tmp_path)
    fs, path = url_to_fs("ckpts/run")
    assert isinstance(fs, LocalFileSystem) and path == str(tmp_path / "ckpts" / "run")
    assert not (tmp_path / "file:").exists()


def test_is_remote() -> None:
    assert is_remote("gs://b/x") and is_remote("memory://x") and is_remote("simplecache::gs://b")
    assert not is_remote("/content/drive/MyDrive/Atheria") and not is_remote("file:///x") and not is_remote("rel")
