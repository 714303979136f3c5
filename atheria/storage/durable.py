"""Whether a local durable root would be created where no durable storage is: under an unmounted Drive, or below a
mistyped folder, it would land on the VM's own disk and vanish with the session."""
from __future__ import annotations

import os
from typing import Optional

from atheria.storage import drive
from atheria.storage.paths import is_remote, url_to_fs


def _under(path: str, folder: str) -> bool:
    """True when `path` is `folder` or lies below it (both absolute)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def not_durable(root: str) -> Optional[str]:
    """Why the local root `root` is not on durable storage (one line that says how to fix it), or None when it may be
    used: under the Drive mount point the Drive must be mounted, and any local root's parent must exist (the root
    itself may be created). URLs answer None: their bucket is probed by writing to it."""
    if is_remote(root):
        return None
    path = url_to_fs(root)[1]
    mount = drive.DRIVE_MOUNT
    if _under(path, mount) and not os.path.ismount(mount):
        return (f"is under {mount}, where Google Drive is not mounted, so it would be created on the VM's disk and "
                f"lost with the session; run `from google.colab import drive; drive.mount('{mount}')` first, or set "
                "storage.remote to another durable folder, gs://bucket/prefix or null")
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        return (f"would be created below {parent}, which does not exist (a mistyped path would put checkpoints on a "
                "disk nobody keeps); accepted: a folder whose parent exists, gs://bucket/prefix, any fsspec URL, "
                "or null")
    return None
