"""`ckpt_path`: which checkpoint a run continues from — newest valid of local and remote, a given one, or none."""
from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from omegaconf import DictConfig, OmegaConf

from atheria.debug_log import NAME as DEBUG_LOG
from atheria.errors import ConfigError
from atheria.families import CHECKPOINT_DEFAULT, FAMILIES, family_of
from atheria.storage.atomic import get_file_atomic
from atheria.storage.finder import CorruptCheckpoint, NoTrustedCheckpoint, checkpoint_step, find_latest, load_checkpoint
from atheria.storage.layout import Layout
from atheria.storage.paths import is_remote, url_to_fs


@dataclass(frozen=True)
class Resume:
    """A local checkpoint path to hand to Trainer.fit, the episode it holds, and where it came from."""

    path: str
    episode: int
    source: str
    logged: int = 0  # the newest episode metrics.csv held before this session (the loggers got it, then a kill)

    @property
    def line(self) -> str:
        """What a session says when it goes ahead from this checkpoint (not when the run is already complete)."""
        return f"Resuming from episode {self.episode}: {self.source}"


def law_identity(cfg: DictConfig) -> dict[str, Any]:
    """What fixes the shapes of a law's weights, and what it is trained for, by config key: a checkpoint must match
    it to be resumed."""
    return {key: OmegaConf.select(cfg, key) for key in family_of(cfg).law_keys(cfg)}


def _describe(values: Mapping[str, Any]) -> str:
    """A law in a few words: 'UNET d_state=8 hidden_channels=16', or 'pretrained=gpt2 lora_r=8'."""
    return " ".join(str(v).upper() if k == "arch" else f"{k}={v}" for k, v in values.items())


def check_same_law(ckpt_path: str, path: str, expect: Mapping[str, Any], source_key: str = "ckpt_path",
                   crc: bool = True) -> None:
    """Refuse, naming the keys that differ, a checkpoint of another architecture or size than this run's law
    (`source_key`: the config key that named the checkpoint, for the message; `crc=False`: already verified)."""
    hparams = load_checkpoint(path, crc).get("hyper_parameters")
    if not isinstance(hparams, dict):
        raise ConfigError(f"{source_key}={ckpt_path!r} ({path}) has no hyper_parameters: not an Atheria checkpoint; "
                          "accepted: a checkpoint of this model, or ckpt_path=null to start fresh")
    short = {key: key.split(".", 1)[1] for key in expect}
    family = hparams.get("family", CHECKPOINT_DEFAULT)
    before = FAMILIES[family].saved_before if family in FAMILIES else {}
    theirs = {short[key]: hparams.get(short[key], before.get(short[key])) for key in expect}
    ours = {short[key]: value for key, value in expect.items()}
    differ = [key for key in expect if theirs[short[key]] != expect[key]]
    if differ:
        continuing = " ".join(f"{key}={theirs[short[key]]}" for key in differ)
        raise ConfigError(f"{source_key}={ckpt_path!r} ({path}) holds a {_describe(theirs)} law; this run is "
                          f"{_describe(ours)} ({', '.join(differ)} differ{'s' if len(differ) == 1 else ''}); "
                          f"accepted: {continuing} to continue it, ckpt_path=null to start fresh, or another name=")


def fetch_checkpoint(url: str, local: Layout, key: str, prefix: str, accepted: str) -> str:
    """The checkpoint file that config key `key` names (a path or URL) as a local path: a remote one is copied next
    to the local checkpoints as '{prefix}-{name}' first; unreachable or missing is a one-line ConfigError."""
    fs, path = url_to_fs(url)
    try:
        exists = fs.isfile(path)
    except Exception as exc:  # an unreachable remote
        raise ConfigError(f"{key}={url!r} is unreachable ({type(exc).__name__}); {accepted}") from exc
    if not exists:
        raise ConfigError(f"{key}={url!r} is not a file; {accepted}")
    if not is_remote(url):
        return path
    os.makedirs(local.checkpoints, exist_ok=True)
    target = os.path.join(local.checkpoints, f"{prefix}-{os.path.basename(path)}")
    get_file_atomic(url, target)
    return target


def _given(ckpt_path: str, local: Layout) -> Resume:
    """An explicit PATH or URL: a remote file is copied next to the local checkpoints first; both are checked."""
    accepted = "accepted: last, null, a checkpoint path or URL"
    path = fetch_checkpoint(ckpt_path, local, "ckpt_path", "resume", accepted)
    try:
        return Resume(path, checkpoint_step(path), ckpt_path)
    except CorruptCheckpoint as exc:
        raise ConfigError(f"ckpt_path={ckpt_path!r} is not a loadable checkpoint ({exc}); {accepted}") from exc


def resolve_resume(ckpt_path: Optional[str], local: Layout, remote: Optional[Layout],
                   say: Callable[[str], None] = print, expect: Optional[Mapping[str, Any]] = None) -> Optional[Resume]:
    """The checkpoint to continue from, or None for a fresh start (said in one line, with why; a resume is said by
    the caller, with Resume.line, once it goes ahead). With `expect` (see law_identity), a checkpoint of another
    law is refused rather than loaded with errors."""
    if ckpt_path is None:
        say("Starting fresh (ckpt_path=null).")
        return None
    if ckpt_path != "last":
        found = _given(ckpt_path, local)
    else:
        try:
            latest = find_latest(local.checkpoints, remote.checkpoints if remote else None, say=say)
        except NoTrustedCheckpoint as exc:
            raise ConfigError(f"ckpt_path=last: {exc}; accepted: ckpt_path=null to start over deliberately, or "
                              "ckpt_path=PATH of a good checkpoint") from exc
        if latest is None:
            where = local.checkpoints + (f" or {remote.checkpoints}" if remote else "")
            say(f"No checkpoint in {where}: starting fresh.")
            return None
        path, cand = latest
        found = Resume(path, checkpoint_step(path, crc=False), cand.url)  # verified; the file's step: it may be newer
    if expect:
        check_same_law(ckpt_path, found.path, expect, crc=False)  # verified by find_latest or _given
    return found


def restore_logs(local: Layout, remote: Optional[Layout], say: Callable[[str], None] = print) -> None:
    """On a fresh machine (no local logs but this session's debug log), bring the experiment's logs (metrics, W&B id,
    status) back from the remote."""
    if remote is None or (os.path.isdir(local.logs) and set(os.listdir(local.logs)) - {DEBUG_LOG}):
        return
    fs, path = url_to_fs(remote.logs)
    try:
        names = [p for p in fs.find(path) if "/wandb/" not in p and posixpath.basename(p) != DEBUG_LOG]
    except Exception as exc:  # logs are a convenience; a resume goes on without them
        say(f"Could not restore logs from {remote.logs} ({type(exc).__name__}); continuing without them.")
        return
    for name in names:
        rel = os.path.relpath(name, path)
        target = os.path.join(local.logs, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fs.get_file(name, target)
