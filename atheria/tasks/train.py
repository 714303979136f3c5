"""task=train: fit the family's LightningModule with the session's callbacks and loggers, and say how it ended."""
from __future__ import annotations

import errno
import logging
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any, Optional, cast

from omegaconf import DictConfig, OmegaConf

from atheria.callbacks import CallbackSettings, EarlyStop, build_callbacks
from atheria.config.secrets import redacted
from atheria.families import build_datamodule, build_module, family_of
from atheria.resume import Resume
from atheria.session.kit import launcher_rank
from atheria.session.outcome import Outcome, SessionState, final_words
from atheria.session.status import read_status
from atheria.storage.layout import Layout
from atheria.sweeps import best_smoothed_loss, mark_budget_spent
from atheria.tasks import launch_command, session_settings, where, write_config

if TYPE_CHECKING:
    from atheria.warmstart import Source

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


def silence_known_warnings() -> None:
    """Ignore the warnings of _QUIET and drop the log lines of _DROPPED."""
    for pattern in _QUIET:
        warnings.filterwarnings("ignore", message=pattern)
    for name in ("lightning.pytorch", "lightning.fabric"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(_DropNoise())
    logging.getLogger("transformers.modeling_utils").addFilter(_DropNoise())


def check_needs(cfg: DictConfig) -> None:
    """A W&B logger needs a login (or WANDB_MODE=offline) before training starts."""
    from atheria.loggers import check_wandb_login

    check_wandb_login(cfg.logger)


def describe(cfg: DictConfig) -> str:
    """One line saying what this run trains, how long, and where."""
    return f"{cfg.name}: {family_of(cfg).describe(cfg)} {where(cfg)}"


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


def callback_settings(cfg: DictConfig) -> CallbackSettings:
    """The typed settings of the session's callbacks, from a validated config."""
    run, early = cfg.run, cfg.run.early_stop
    return CallbackSettings(
        session=session_settings(cfg), save_every=run.save_every, sync_every=run.sync_every, keep_best=run.keep_best,
        monitor_every=run.monitor_every, plot_every=run.plot_every, media_every=run.media_every,
        early_stop=EarlyStop(early.monitor, early.patience, early.min_delta) if early else None,
        evaluate_every=family_of(cfg).evaluate_every(cfg), validate_every=family_of(cfg).validate_every(cfg),
        key_metric=family_of(cfg).key_metric,
        config=cast(dict[str, Any], OmegaConf.to_container(redacted(cfg))), launch=launch_command(cfg))


def build_trainer(cfg: DictConfig, max_steps: int, callbacks: list[Any], **kwargs: Any) -> Any:
    """The Lightning Trainer of cfg.trainer for `max_steps` episodes: the run's, `atheria estimate`'s and bench's."""
    from hydra.utils import instantiate

    return instantiate(cfg.trainer, max_steps=max_steps, callbacks=callbacks, **kwargs)


def run(cfg: DictConfig, local: Layout, remote: Optional[Layout], resume: Optional[Resume],
        source: Optional[Source]) -> Outcome:
    """One session of a validated, locked experiment: build module, data, callbacks and loggers, fit, say how it
    ended."""
    if _already_complete(cfg, local, resume, cfg.run.total_episodes):
        return Outcome(0, best_smoothed_loss(local.logs))

    import lightning.pytorch as pl

    from atheria.loggers import build_loggers, describe_run, finish_runs

    silence_known_warnings()
    if launcher_rank() > 0:  # DDP's other ranks: rank zero speaks, writes and mirrors for the run
        sys.stdout = open(os.devnull, "w")
    print(describe(cfg))
    pl.seed_everything(cfg.seed, verbose=False)
    if launcher_rank() == 0:
        write_config(cfg, local)

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
    settings = callback_settings(cfg)
    machinery = build_callbacks(settings, local, remote, total)
    loggers = build_loggers(cfg, local.logs, resume)
    describe_run(loggers, settings.config)
    trainer = build_trainer(cfg, total, machinery.callbacks, logger=loggers, plugins=machinery.plugins)
    failed = True
    try:
        if resume is None and getattr(module, "baseline_validation", False):
            trainer.validate(module, datamodule=data, verbose=False)  # "before" figures, logged at episode 0
        trainer.fit(module, datamodule=data, ckpt_path=resume.path if resume else None, weights_only=True)
        failed = False
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            machinery.checkpoints.mirror_last_good()
        raise
    finally:
        if machinery.mirror:
            machinery.mirror.close(timeout=5)
        finish_runs(loggers, failed)
    session = machinery.session
    reason = session.stop_reason or SessionState.COMPLETED
    if reason == SessionState.STOPPED_BUDGET:
        mark_budget_spent()
    if reason == SessionState.COMPLETED and trainer.global_step < total:
        reason = SessionState.EARLY
    print(final_words(reason, trainer.global_step, total, signal=session.signal_name))
    print(f"Checkpoints: {local.checkpoints}  Metrics: {local.logs}")
    return Outcome(0, best_smoothed_loss(local.logs))
