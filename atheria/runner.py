"""From a composed config to a finished (or cleanly stopped) training session: the one data-flow path."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from atheria.config import ConfigError, validate
from atheria.config.secrets import redacted
from atheria.storage.layout import Layout

_QUIET = (
    r".*does not have many workers.*",
    r".*GPU available but not used.*",
    r".*Experiment logs directory .* exists and is not empty.*",
    r".*`training_step` returned `None`.*",
    r".*Checkpoint directory .* exists and is not empty.*",
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
)


class _DropTips(logging.Filter):
    """Lightning advertises cloud services at every start; our users' consoles are for their run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in record.getMessage()


def _silence_known_warnings() -> None:
    for pattern in _QUIET:
        warnings.filterwarnings("ignore", message=pattern)
    logging.getLogger("gcsfs").setLevel(logging.WARNING)
    for name in ("lightning.pytorch", "lightning.fabric"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(_DropTips())


def _resume_path(cfg: DictConfig, local: Layout) -> str | None:
    """`ckpt_path`: last -> this experiment's last.ckpt if any; null -> fresh; else the given path."""
    if cfg.ckpt_path is None:
        print("Starting fresh (ckpt_path=null).")
        return None
    if cfg.ckpt_path == "last":
        last = Path(local.checkpoints) / "last.ckpt"
        if not last.exists():
            print(f"No checkpoint in {local.checkpoints}: starting fresh.")
            return None
        return str(last)
    if not Path(cfg.ckpt_path).is_file():
        raise ConfigError(f"ckpt_path={cfg.ckpt_path!r} is not a file; accepted: last, null, a checkpoint path or URL")
    return str(cfg.ckpt_path)


def _init_source(cfg: DictConfig) -> str:
    """`init_from`: a checkpoint path, or an experiment name whose best-final.ckpt (else last.ckpt) is used."""
    if Path(cfg.init_from).is_file():
        return str(cfg.init_from)
    ckpts = Path(Layout(cfg.storage.local, cfg.init_from).checkpoints)
    for candidate in ("best-final.ckpt", "last.ckpt"):
        if (ckpts / candidate).is_file():
            return str(ckpts / candidate)
    raise ConfigError(f"init_from={cfg.init_from!r} names no checkpoint file nor an experiment with checkpoints "
                      f"in {ckpts}; accepted: a checkpoint path or a finished experiment's name")


def describe(cfg: DictConfig) -> str:
    """One line saying what this run trains, how long, and where."""
    m, q, r = cfg.model, cfg.qca, cfg.run
    budget = f"{r.max_hours} h budget" if r.max_hours else "no time budget"
    return (f"{cfg.name}: {m.arch.upper()} d_state={m.d_state} hidden={m.hidden_channels}, grid {q.grid_size}, "
            f"{q.steps} steps/episode, {r.total_episodes} episodes on {cfg.platform.name} ({budget})")


def train(cfg: DictConfig) -> int:
    """Validate, build model + data + callbacks + loggers, fit, and say where everything went. Returns an exit code."""
    validate(cfg)
    local = Layout(cfg.storage.local, cfg.name)
    init_source = _init_source(cfg) if cfg.init_from else None
    ckpt_path = _resume_path(cfg, local)

    import lightning.pytorch as pl
    from hydra.utils import instantiate
    from lightning.pytorch.callbacks import ModelCheckpoint

    from atheria.callbacks.progress import EpisodeProgressBar
    from atheria.data import EpisodeDataModule
    from atheria.modules import build_module
    from atheria.modules.warmstart import warm_start

    _silence_known_warnings()
    print(describe(cfg))
    pl.seed_everything(cfg.seed, verbose=False)
    Path(local.logs).mkdir(parents=True, exist_ok=True)
    (Path(local.logs) / "config.yaml").write_text(OmegaConf.to_yaml(redacted(cfg)))

    module = build_module(cfg)
    if init_source and ckpt_path is None:
        warm_start(module, init_source)
    data = EpisodeDataModule(cfg.seed, cfg.qca.batch_size, cfg.qca.grid_size, cfg.model.d_state)
    checkpoints = ModelCheckpoint(dirpath=local.checkpoints, filename="ep{step:06d}", auto_insert_metric_name=False,
                                  every_n_train_steps=cfg.run.save_every, save_last=True,
                                  monitor="train/loss_smooth", mode="min", save_top_k=cfg.run.keep_best)
    loggers = list(instantiate(cfg.logger))
    trainer = instantiate(cfg.trainer, callbacks=[checkpoints, EpisodeProgressBar()], logger=loggers)
    if ckpt_path:
        print(f"Resuming from {ckpt_path}")
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
    print(f"Stopped at episode {trainer.global_step}/{cfg.run.total_episodes}. "
          f"Checkpoints: {local.checkpoints}  Metrics: {local.logs}")
    return 0
