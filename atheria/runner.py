"""From a composed config to a finished (or cleanly stopped) training session: the one data-flow path."""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
import tempfile
import time
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Iterator, Optional

from omegaconf import DictConfig, OmegaConf

from atheria.config import check_runtime, validate
from atheria.config.secrets import redacted
from atheria.debug_log import keep_debug_log, open_debug_log
from atheria.errors import ConfigError, one_line
from atheria.families import build_datamodule, build_module, family_of
from atheria.observe.history import trim_history
from atheria.resume import Resume, law_identity, resolve_resume, restore_logs
from atheria.session.outcome import Outcome, SessionState, final_words
from atheria.session.status import read_status
from atheria.storage.atomic import write_bytes_atomic
from atheria.storage.drive import flush_drive_at_exit
from atheria.storage.durable import not_durable
from atheria.storage.finder import CorruptCheckpoint, checkpoint_step
from atheria.storage.layout import Layout
from atheria.storage.lock import ExperimentLock, LockHeld
from atheria.storage.paths import join, url_to_fs
from atheria.sweeps import best_smoothed_loss, budget_spent, current_job_name, mark_budget_spent
from atheria.warmstart import read_source

_QUIET = (
    r".*does not have many workers.*",
    r".*GPU available but not used.*",
    r".*Experiment logs directory .* exists and is not empty.*",
    r".*Checkpoint directory .* exists and is not empty.*",
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
    r".*`is_gradient_checkpointing` is deprecated.*",  # transformers, when peft wraps GPT-2 (model=gpt2_lora)
)
# Log lines that our own lines say better: Lightning's devices (the resource report), its restore (our Resuming
# line), its stop (our final line) and its cloud tips; transformers' notice that GPT-2's class name maps to no loss
# type (it uses the causal LM's loss).
_DROPPED = ("Tip:", "GPU available:", "TPU available:", "HPU available:", "LOCAL_RANK:", "`Trainer.fit` stopped:",
            "Restoring states from the checkpoint", "Restored all states from the checkpoint",
            "was set in the config but it is unrecognized")


class _DropNoise(logging.Filter):
    """Drops the log records of _DROPPED: our users' consoles are for their run."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(part in message for part in _DROPPED)


def _silence_known_warnings() -> None:
    """Ignore the warnings of _QUIET and drop the log lines of _DROPPED."""
    for pattern in _QUIET:
        warnings.filterwarnings("ignore", message=pattern)
    for name in ("lightning.pytorch", "lightning.fabric"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(_DropNoise())
    logging.getLogger("transformers.modeling_utils").addFilter(_DropNoise())


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


def _check_needs(cfg: DictConfig) -> None:
    """Refuse, before any work, what would fail once training starts: a W&B logger without a login, a pretrained
    model out of reach, an episode larger than the device's free memory."""
    if cfg.task == "train":
        from atheria.loggers import check_wandb_login

        check_wandb_login(cfg.logger)
    family_of(cfg).check_needs(cfg)


def describe(cfg: DictConfig) -> str:
    """One line saying what this run trains, how long, and where."""
    budget = f"{cfg.run.max_hours} h budget" if cfg.run.max_hours else "no time budget"
    return f"{cfg.name}: {family_of(cfg).describe(cfg)} on {cfg.platform.name} ({budget})"


def _total_steps(cfg: DictConfig, data: object) -> int:
    """Optimizer steps of the whole run: run.total_episodes, capped by run.max_epochs passes over the data."""
    total = cfg.run.total_episodes
    if cfg.run.max_epochs and hasattr(data, "batches_per_epoch"):
        total = min(total, cfg.run.max_epochs * data.batches_per_epoch())
    return total


def _already_complete(cfg: DictConfig, local: Layout, resume: Optional[Resume], total: int) -> bool:
    """True (and says so) when the checkpoint reached `total`, or the run already ended early on its own."""
    if resume is None:
        return False
    status = read_status(local.logs)
    early = status is not None and status.state == SessionState.COMPLETED and status.total == total
    if resume.episode < total and not early:
        return False
    how = "" if resume.episode >= total else f", stopped early by run.early_stop at {resume.episode}"
    print(f"{cfg.name} is already complete ({resume.episode}/{total} episodes{how}); "
          "raise run.total_episodes to train further.")
    return True


def _budget_spent_line(cfg: DictConfig) -> Optional[str]:
    """When an earlier job of this session used the budget up, or the session is past its stop point: the line that
    skips this job, with when and by what the session started, the budget and its use; else None."""
    from atheria.session.kit import build_clock

    run = cfg.run
    clock = build_clock(run, cfg.platform.session_clock)
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


def _launcher_rank() -> int:
    """This process's rank from the variables DDP launchers set, read as Lightning's rank_zero_only reads them, but
    without importing Lightning (seconds) before a run is known to go ahead."""
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if key in os.environ:
            return int(os.environ[key])
    return 0


@contextlib.contextmanager
def _experiment_lock(local: Layout) -> Iterator[None]:
    """Hold the experiment's lock for the session; under DDP only rank zero takes it, the other ranks run under it."""
    if _launcher_rank() > 0:
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
    validate(cfg)
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


def _write_config(cfg: DictConfig, local: Layout) -> None:
    """The composed config, secrets masked, as logs/{name}/config.yaml."""
    Path(local.logs).mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(str(Path(local.logs) / "config.yaml"), OmegaConf.to_yaml(redacted(cfg)).encode())


def _session(cfg: DictConfig, local: Layout) -> Outcome:
    """One session of a validated, locked experiment: resume or start, fit, and say how it ended."""
    open_debug_log(local.logs)
    _check_needs(cfg)
    remote: Optional[Layout] = Layout(cfg.storage.remote, cfg.name) if cfg.storage.remote else None
    if remote:
        _check_remote(remote)
        if cfg.platform.flush == "drive":
            flush_drive_at_exit(remote.root)
    resume = resolve_resume(cfg.ckpt_path, local, remote, expect=law_identity(cfg))
    source = read_source(cfg) if cfg.init_from and resume is None else None  # a resumed run has its own weights
    if resume:
        restore_logs(local, remote)
        if _launcher_rank() == 0:  # rank zero keeps the logs
            trim_history(local.logs, resume.episode)
    keep_debug_log()
    if cfg.task == "rl_scheduler":
        from atheria.rl.session import run_scheduler

        _write_config(cfg, local)
        return run_scheduler(cfg, local, remote, resume)
    if _already_complete(cfg, local, resume, cfg.run.total_episodes):
        return Outcome(0, best_smoothed_loss(local.logs))

    import lightning.pytorch as pl
    from hydra.utils import instantiate

    from atheria.callbacks import build_callbacks
    from atheria.callbacks.tiered import AtomicCheckpointIO
    from atheria.loggers import build_loggers

    _silence_known_warnings()
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    if rank_zero_only.rank > 0:  # DDP's other ranks: rank zero speaks, writes and mirrors for the run
        sys.stdout = open(os.devnull, "w")
    print(describe(cfg))
    pl.seed_everything(cfg.seed, verbose=False)
    if rank_zero_only.rank == 0:
        _write_config(cfg, local)

    module = build_module(cfg)
    if source:
        source.seed(module.law)
    data = build_datamodule(cfg)
    data.setup("fit")
    total = _total_steps(cfg, data)
    if _already_complete(cfg, local, resume, total):
        return Outcome(0, best_smoothed_loss(local.logs))
    if resume:
        print(resume.line)
    machinery = build_callbacks(cfg, local, remote, total)
    trainer = instantiate(cfg.trainer, max_steps=total, callbacks=machinery.callbacks,
                          logger=build_loggers(cfg, local.logs), plugins=[AtomicCheckpointIO()])
    try:
        if resume is None and getattr(module, "baseline_validation", False):
            trainer.validate(module, datamodule=data, verbose=False)  # "before" figures, logged at episode 0
        trainer.fit(module, datamodule=data, ckpt_path=resume.path if resume else None, weights_only=True)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            machinery.checkpoints.mirror_last_good()
        raise
    finally:
        if machinery.mirror:
            machinery.mirror.close(timeout=5)
    session = machinery.session
    reason = session.stop_reason or SessionState.COMPLETED
    if reason == SessionState.STOPPED_BUDGET:
        mark_budget_spent()
    if reason == SessionState.COMPLETED and trainer.global_step < total:
        reason = SessionState.EARLY
    print(final_words(reason, trainer.global_step, total, signal=session.signal_name))
    print(f"Checkpoints: {local.checkpoints}  Metrics: {local.logs}")
    return Outcome(0, best_smoothed_loss(local.logs))
