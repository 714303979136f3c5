"""`ckpt_path`: which checkpoint a run continues from — newest valid of local and remote, a given one, or none."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional

from atheria.config import ConfigError
from atheria.storage.atomic import get_file_atomic
from atheria.storage.finder import CorruptCheckpoint, checkpoint_step, find_latest
from atheria.storage.layout import Layout
from atheria.storage.paths import is_remote, url_to_fs


@dataclass(frozen=True)
class Resume:
    """A local checkpoint path to hand to Trainer.fit, the episode it holds, and where it came from."""

    path: str
    episode: int
    source: str


def _given(ckpt_path: str, local: Layout) -> Resume:
    """An explicit PATH or URL: a remote file is copied next to the local checkpoints first; both are checked."""
    accepted = "accepted: last, null, a checkpoint path or URL"
    fs, path = url_to_fs(ckpt_path)
    try:
        exists = fs.isfile(path)
    except Exception as exc:  # an unreachable remote
        raise ConfigError(f"ckpt_path={ckpt_path!r} is unreachable ({type(exc).__name__}); {accepted}") from exc
    if not exists:
        raise ConfigError(f"ckpt_path={ckpt_path!r} is not a file; {accepted}")
    if is_remote(ckpt_path):
        os.makedirs(local.checkpoints, exist_ok=True)
        target = os.path.join(local.checkpoints, "resume-" + os.path.basename(path))
        get_file_atomic(ckpt_path, target)
        path = target
    try:
        return Resume(path, checkpoint_step(path), ckpt_path)
    except CorruptCheckpoint as exc:
        raise ConfigError(f"ckpt_path={ckpt_path!r} is not a loadable checkpoint ({exc}); {accepted}") from exc


def resolve_resume(ckpt_path: Optional[str], local: Layout, remote: Optional[Layout],
                   say: Callable[[str], None] = print) -> Optional[Resume]:
    """The checkpoint to continue from, or None for a fresh start; says in one line which and why."""
    if ckpt_path is None:
        say("Starting fresh (ckpt_path=null).")
        return None
    if ckpt_path != "last":
        found = _given(ckpt_path, local)
    else:
        latest = find_latest(local.checkpoints, remote.checkpoints if remote else None, say=say)
        if latest is None:
            where = local.checkpoints + (f" or {remote.checkpoints}" if remote else "")
            say(f"No checkpoint in {where}: starting fresh.")
            return None
        path, cand = latest
        found = Resume(path, checkpoint_step(path), cand.url)  # the file, not its entry: it may be newer
    say(f"Resuming from episode {found.episode}: {found.source}")
    return found


def restore_logs(local: Layout, remote: Optional[Layout], say: Callable[[str], None] = print) -> None:
    """On a fresh machine, bring the experiment's logs (metrics, W&B id, status) back from the remote."""
    if remote is None or os.path.isdir(local.logs):
        return
    fs, path = url_to_fs(remote.logs)
    try:
        names = [p for p in fs.find(path) if "/wandb/" not in p]
    except Exception as exc:  # logs are a convenience; a resume goes on without them
        say(f"Could not restore logs from {remote.logs} ({type(exc).__name__}); continuing without them.")
        return
    for name in names:
        rel = os.path.relpath(name, path)
        target = os.path.join(local.logs, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fs.get_file(name, target)
