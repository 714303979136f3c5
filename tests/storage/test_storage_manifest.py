"""manifest: the latest pointer round-trips, and bad or missing ones read as None."""
from __future__ import annotations

import uuid

import fsspec
import pytest

from atheria.storage.manifest import MANIFEST_NAME, Manifest, file_entry, read_manifest, write_manifest


@pytest.fixture(params=["local", "memory"])
def dir_url(request, tmp_path) -> str:
    """A fresh checkpoint dir, local or in memory://."""
    return str(tmp_path / "ckpts") if request.param == "local" else f"memory://manifest-{uuid.uuid4().hex[:8]}"


def test_manifest_round_trips(dir_url: str, tmp_path) -> None:
    ckpt = tmp_path / "last.ckpt"
    ckpt.write_bytes(b"weights")
    manifest = Manifest(step=7, checkpoint="last.ckpt", files={"last.ckpt": file_entry(ckpt, 7)})
    write_manifest(dir_url, manifest)
    assert read_manifest(dir_url) == manifest
    assert manifest.files["last.ckpt"].size == 7 and len(manifest.files["last.ckpt"].sha256) == 64
    assert manifest.updated.endswith("+00:00")


@pytest.mark.parametrize("text", [b"{not json", b"[]", b'{"step": 1}', b'{"step": "x", "checkpoint": "a", "files": {}}',
                                  b"\xff\xfe"])
def test_bad_manifest_reads_as_none(dir_url: str, text: bytes) -> None:
    fs, path = fsspec.core.url_to_fs(f"{dir_url}/{MANIFEST_NAME}")
    fs.makedirs(fs._parent(path), exist_ok=True)
    fs.pipe_file(path, text)
    assert read_manifest(dir_url) is None


def test_missing_manifest_reads_as_none(dir_url: str) -> None:
    assert read_manifest(dir_url) is None
