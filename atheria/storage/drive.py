"""Google Drive on Colab: writes through the mount lag behind, so flush them before the runtime goes away (on the
platforms whose `platform.flush` is drive)."""
from __future__ import annotations

import atexit
import functools
import os

DRIVE_MOUNT = "/content/drive"  # where Colab mounts Google Drive (`drive.mount('/content/drive')`)


@functools.lru_cache(maxsize=None)
def flush_drive_at_exit(remote_root: str) -> bool:
    """Once per process: at exit, sync file buffers and, on Colab, flush and unmount Drive (its documented way
    to force pending uploads). True when a remote under the Drive mount was registered."""
    if not remote_root.startswith(DRIVE_MOUNT):
        return False
    atexit.register(_flush)
    return True


def _flush() -> None:
    os.sync()
    try:
        from google.colab import drive  # only on Colab
    except ImportError:
        return
    print("Flushing Google Drive (this can take minutes after a large checkpoint)...")
    drive.flush_and_unmount()
