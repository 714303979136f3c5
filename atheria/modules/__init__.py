"""LightningModules: the glue between a model family and Lightning, and how a config builds one."""
from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from atheria.modules.qca import QCAModule


def build_module(cfg: DictConfig) -> QCAModule:
    """The LightningModule for `model.family`, from a validated config (plain values only, for safe checkpoints)."""
    qca = OmegaConf.to_container(cfg.qca, resolve=True)
    physics = {k: qca[k] for k in ("steps", "gamma", "normalize", "checkpoint_steps", "bptt_window",
                                   "noise", "noise_max", "noise_ramp")}
    return QCAModule(arch=cfg.model.arch, d_state=cfg.model.d_state, hidden_channels=cfg.model.hidden_channels,
                     physics=physics, weights=qca["weights"], survival_target=qca["survival_target"],
                     alive_threshold=qca["alive_threshold"], lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay,
                     smoothing=cfg.run.smoothing, seed=cfg.seed)


__all__ = ["QCAModule", "build_module"]
