"""Framework-neutral durable storage: atomic writes, manifests, the checkpoint finder and the background mirror."""
from atheria.storage.atomic import get_file_atomic, put_file_atomic, sha256_file, write_bytes_atomic
from atheria.storage.finder import (Candidate, CorruptCheckpoint, checkpoint_step, find_latest, list_candidates,
                                    load_checkpoint)
from atheria.storage.manifest import MANIFEST_NAME, FileEntry, Manifest, file_entry, read_manifest, write_manifest
from atheria.storage.mirror import Mirror
from atheria.storage.paths import is_remote, join, url_to_fs

__all__ = [
    "MANIFEST_NAME", "Candidate", "CorruptCheckpoint", "FileEntry", "Manifest", "Mirror", "checkpoint_step",
    "file_entry", "find_latest", "get_file_atomic", "is_remote", "join", "list_candidates", "load_checkpoint",
    "put_file_atomic", "read_manifest", "sha256_file", "url_to_fs", "write_bytes_atomic", "write_manifest",
]
