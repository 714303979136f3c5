"""The model families by `model.family`: each module here answers for one (a Family), and nothing outside this
package dispatches on the name. Importing it is cheap: each family imports torch, transformers and peft only when
it builds or checks something."""
from __future__ import annotations

from typing import TYPE_CHECKING

from omegaconf import DictConfig

from atheria.checks import require
from atheria.families.family import Family
from atheria.families.lm import LM
from atheria.families.qca import QCA

if TYPE_CHECKING:
    import lightning.pytorch as pl

FAMILIES: dict[str, Family] = {family.name: family for family in (QCA, LM)}
CHECKPOINT_DEFAULT = QCA.name  # the family of a checkpoint without a `family` hyperparameter (QCA's save none)


def family_of(cfg: DictConfig) -> Family:
    """The family of the config's `model.family`; an unknown or missing one is a one-line ConfigError."""
    return FAMILIES[require(cfg, "model.family", lambda v: v in FAMILIES, ", ".join(FAMILIES))]


def build_module(cfg: DictConfig) -> pl.LightningModule:
    """The LightningModule for `model.family`, from a validated config (plain values only, for safe checkpoints)."""
    return family_of(cfg).build_module(cfg)


def build_datamodule(cfg: DictConfig) -> pl.LightningDataModule:
    """The data of `model.family`: seeded QCA episodes, or token blocks of text."""
    return family_of(cfg).build_datamodule(cfg)


__all__ = ["CHECKPOINT_DEFAULT", "FAMILIES", "Family", "build_datamodule", "build_module",
           "family_of"]
