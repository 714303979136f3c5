"""traits: one table of what differs between storage backends, read by the atomic writes, is_remote and the debug
log."""
from __future__ import annotations

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from atheria.storage import traits


def test_plain_paths_and_file_urls_are_local() -> None:
    assert traits.of_url("/content/drive/MyDrive/run").local and traits.of_url("file:///x").local
    assert traits.of_fs(LocalFileSystem()).local
    assert not traits.of_url("gs://b/x").local and not traits.of_url("simplecache::gs://b").local


def test_object_stores_upload_straight_to_the_name_and_others_go_through_a_temp_name() -> None:
    for protocol in ("gs", "gcs", "s3", "s3a"):
        assert traits.of_url(f"{protocol}://bucket/x").atomic_upload, protocol
    assert all(traits.TRAITS[name].atomic_upload for name in fsspec.get_filesystem_class("gs").protocol)
    assert traits.of_fs(MemoryFileSystem()) == traits.DEFAULT and not traits.DEFAULT.atomic_upload
    assert traits.of_url("faulty://x/y") == traits.DEFAULT


def test_every_storage_library_is_kept_off_the_console() -> None:
    assert set(traits.QUIET) == {"gcsfs", "fsspec", "aiohttp", "asyncio", "google", "urllib3", "s3fs", "adlfs"}
    assert len(traits.QUIET) == len(set(traits.QUIET))
