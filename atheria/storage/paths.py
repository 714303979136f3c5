"""Where a local path or fsspec URL lives, and safe joining of names under it."""
from __future__ import annotations

import os

import fsspec
from fsspec.core import split_protocol
from fsspec.implementations.local import LocalFileSystem

from atheria.storage import traits


def is_remote(url: str) -> bool:
    """True for anything that is not a local path or file:// URL, so callers know when to mirror."""
    return not traits.of_url(url).local


def url_to_fs(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """fsspec's url_to_fs, with plain paths and file:// URLs mapped to the local fs and an absolute path."""
    url = str(url)
    if not is_remote(url):
        return LocalFileSystem(), os.path.abspath(split_protocol(url)[1])
    found: tuple[fsspec.AbstractFileSystem, str] = fsspec.core.url_to_fs(url)  # fsspec is untyped
    return found


def join(root: str, *parts: str) -> str:
    """Join relative parts under a local path or URL root, refusing parts that could escape the root."""
    if not root:
        raise ValueError("empty storage root")
    for part in parts:
        _check_part(part)
    tail = "/".join(parts)
    if not tail:
        return root
    return root + tail if root.endswith("/") else f"{root}/{tail}"


def _check_part(part: str) -> None:
    """Raise a one-line ValueError naming a part that is empty, absolute, climbs with '..' or carries a protocol."""
    pieces = part.split("/")
    if not part:
        reason = "is empty"
    elif "://" in part or "::" in part:
        reason = "carries a protocol"
    elif part.startswith(("/", "\\")) or "" in pieces:
        reason = "is absolute or has an empty segment"
    elif ".." in pieces:
        reason = "contains '..'"
    else:
        return
    raise ValueError(f"path part {part!r} {reason}; use a name relative to the storage root")
