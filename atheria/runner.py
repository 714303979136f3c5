"""From a composed config to a finished (or cleanly stopped) training session: the one data-flow path."""
from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
import time
from dataclasses import replace
from datetime import timedelta
from typing import Iterator, Optional

from omegaconf import DictConfig, OmegaConf

from atheria.config import check_runtime
from atheria.debug_log import keep_debug_log, open_debug_log
from atheria.errors import ConfigError, one_line
from atheria.loggers import forget_wandb_run
from atheria.observe.history import read_history, trim_history
from atheria.resume import law_identity, resolve_resume, restore_logs
from atheria.session.kit import launcher_rank
from atheria.session.outcome import Outcome
from atheria.storage.atomic import write_bytes_atomic
from atheria.storage.drive import flush_drive_at_exit
from atheria.storage.durable import not_durable
from atheria.storage.finder import CorruptCheckpoint, checkpoint_step
from atheria.storage.layout import Layout
from atheria.storage.lock import ExperimentLock, LockHeld
from atheria.storage.paths import join, url_to_fs
from atheria.sweeps import best_smoothed_loss, budget_spent, current_job_name
from atheria.tasks import check, check_needs, session_settings, task_of
from atheria.warmstart import read_source


def _check_remote(remote: Layout) -> None:
    """Fail fast, before any training, when the durable root is not on durable storage or cannot be written."""
    why = not_durable(remote.root)
    if why:
        raise ConfigError(f"storage.remote={remote.root!r} {why}")
    probe = join(remote.root, ".atheria-probe")
    try:  # gcsfs's traceback of each failed retry goes to the debug log (open_debug_log); the refusal is the one line
        write_bytes_atomic(probe, b"ok")
        fs, path = url_to_fs(probe)
        fs.rm_file(path)
    except Exception as exc:
        raise ConfigError(f"storage.remote={remote.root!r} is not writable ({one_line(exc, 160)}); accepted: a "
                          "reachable directory, gs://bucket/prefix or fsspec URL you can write to, or null") from exc


def _check_local(root: str) -> None:
    """Fail fast, before the lock makes any folder, when the local root is a file, lies under one, or cannot be
    written: a temporary file in its nearest existing folder probes it (root's bypass of permissions included)."""
    accepted = "accepted: a directory path you can write to (created if missing)"
    existing = os.path.abspath(root)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        where = "is a file" if existing == os.path.abspath(root) else f"lies under the file {existing!r}"
        raise ConfigError(f"storage.local={root!r} {where}; {accepted}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".atheria-probe-", dir=existing)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise ConfigError(f"storage.local={root!r} cannot be written ({exc.strerror} in {existing}); "
                          f"{accepted}") from None


def _budget_spent_line(cfg: DictConfig) -> Optional[str]:
    """When an earlier job of this session used the budget up, or the session is past its stop point: the line that
    skips this job, with when and by what the session started, the budget and its use; else None."""
    from atheria.session.kit import build_clock

    run = cfg.run
    clock = build_clock(session_settings(cfg))
    if not (budget_spent() or clock.should_stop()):
        return None
    origin = ("run.session_start" if run.session_start is not None else
              f"the {cfg.platform.name} runtime's start" if cfg.platform.session_clock == "runtime" else
              "this process's start")
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(clock.start))
    used = timedelta(seconds=round(clock.elapsed()))
    return (f"Skipping {cfg.name}: the session budget is spent ({used} used of run.max_hours={run.max_hours}, which "
            f"stops at {run.stop_at:.0%}; the session started {started}, from {origin}). Run the same command next "
            "session to continue, or set run.session_start=<epoch seconds> if this session started later.")


@contextlib.contextmanager
def _experiment_lock(local: Layout) -> Iterator[None]:
    """Hold the experiment's lock for the session; under DDP only rank zero takes it, the other ranks run under it."""
    if launcher_rank() > 0:
        yield
        return
    lock = ExperimentLock(local.checkpoints, local.name)
    try:
        lock.acquire()
    except LockHeld as exc:
        raise ConfigError(str(exc)) from exc
    try:
        yield
    finally:
        lock.release()


def _disk_full(exc: OSError, local: Layout) -> str:
    """The one line for a local write that found the disk full: where, and the last checkpoint saved whole."""
    last = os.path.join(local.checkpoints, "last.ckpt")
    try:
        good = f"episode {checkpoint_step(last)} ({last})"
    except CorruptCheckpoint:
        good = "none yet"
    return (f"local disk full at {exc.filename or local.root} ({exc.strerror}); the last good checkpoint is {good}; "
            "free space and run the same command to continue")


def train(cfg: DictConfig) -> Outcome:
    """Validate, take the experiment's lock, resume or start, build model + data + callbacks + loggers, fit, and say
    how it ended. A full local disk stops the run with one line and exit code 1."""
    OmegaConf.update(cfg, "name", current_job_name(cfg))
    check(cfg)
    check_runtime(cfg)
    local = Layout(cfg.storage.local, cfg.name)
    skip = _budget_spent_line(cfg)
    if skip:
        print(skip)
        return Outcome(0, best_smoothed_loss(local.logs))
    _check_local(cfg.storage.local)
    try:
        with _experiment_lock(local):
            return _session(cfg, local)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        print(f"error: {_disk_full(exc, local)}", file=sys.stderr)
        return Outcome(1)


def _session(cfg: DictConfig, local: Layout) -> Outcome:
    """One session of a validated, locked experiment: resume or start, fit, and say how it ended."""
    open_debug_log(local.logs)
    check_needs(cfg)
    remote: Optional[Layout] = Layout(cfg.storage.remote, cfg.name) if cfg.storage.remote else None
    if remote:
        _check_remote(remote)
        if cfg.platform.flush == "drive":
            flush_drive_at_exit(remote.root)
    resume = resolve_resume(cfg.ckpt_path, local, remote, expect=law_identity(cfg))
    source = read_source(cfg) if cfg.init_from and resume is None else None  # a resumed run has its own weights
    if resume:
        restore_logs(local, remote)
        if launcher_rank() == 0:  # rank zero keeps the logs
            resume = replace(resume, logged=max(read_history(local.logs), default=0))
            trim_history(local.logs, resume.episode)
    elif launcher_rank() == 0:  # from episode 1 (no checkpoint yet, or ckpt_path=null): the episodes a killed
        trim_history(local.logs, -1)  # session ran before its first save run again, and keep one row each
        if cfg.ckpt_path is None:
            forget_wandb_run(local.logs)  # started over deliberately: a new W&B run
    keep_debug_log()
    return task_of(cfg.task)(cfg, local, remote, resume, source)
