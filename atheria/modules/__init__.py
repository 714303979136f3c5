"""LightningModules: the glue between a model family and Lightning, and how a config builds one."""
from __future__ import annotations

import lightning.pytorch as pl
from omegaconf import DictConfig, OmegaConf

from atheria.modules.qca import QCAModule

PHYSICS_KEYS = ("steps", "gamma", "normalize", "checkpoint_steps", "bptt_window", "noise", "noise_max", "noise_ramp",
                "compile")


def _qca(cfg: DictConfig) -> QCAModule:
    qca = OmegaConf.to_container(cfg.qca, resolve=True)
    return QCAModule(arch=cfg.model.arch, d_state=cfg.model.d_state, hidden_channels=cfg.model.hidden_channels,
                     physics={k: qca[k] for k in PHYSICS_KEYS}, weights=qca["weights"],
                     survival_target=qca["survival_target"], alive_threshold=qca["alive_threshold"], lr=cfg.optim.lr,
                     weight_decay=cfg.optim.weight_decay, smoothing=cfg.run.smoothing, seed=cfg.seed)


def _lm(cfg: DictConfig) -> pl.LightningModule:
    from atheria.modules.lm import LMModule

    m, o = cfg.model, cfg.optim
    return LMModule(pretrained=m.pretrained, lora_r=m.lora_r, lora_alpha=m.lora_alpha, lora_dropout=m.lora_dropout,
                    target_modules=tuple(m.target_modules), n_layer=m.n_layer, n_embd=m.n_embd, n_head=m.n_head,
                    lambda_phi=m.lambda_phi, phi_target=m.phi_target,
                    phi_layer=m.phi_layer, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay,
                    plateau_factor=o.plateau_factor, plateau_patience=o.plateau_patience,
                    smoothing=cfg.run.smoothing, seed=cfg.seed)


def build_module(cfg: DictConfig) -> pl.LightningModule:
    """The LightningModule for `model.family`, from a validated config (plain values only, for safe checkpoints)."""
    return _lm(cfg) if cfg.model.family == "lm" else _qca(cfg)


def build_datamodule(cfg: DictConfig) -> pl.LightningDataModule:
    """The data of `model.family`: seeded QCA episodes, or token blocks of text."""
    if cfg.model.family == "lm":
        from atheria.data.text import TextDataModule
        from atheria.lm.tokenizer import load_tokenizer

        d = cfg.data
        return TextDataModule(load_tokenizer(cfg.model.pretrained), d.path, d.dataset, d.block_size, d.batch_size,
                              cfg.seed, d.val_fraction)
    from atheria.data import EpisodeDataModule

    return EpisodeDataModule(cfg.seed, cfg.qca.batch_size, cfg.qca.grid_size, cfg.model.d_state)


__all__ = ["QCAModule", "build_datamodule", "build_module"]
