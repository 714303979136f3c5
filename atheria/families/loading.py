"""Rebuild a trained LightningModule from a checkpoint without executing pickled code: hyperparameters from
`hyper_parameters`, weights from `state_dict`, the class chosen by the `family` hyperparameter.

Each Family names its module as "package.module:Class" (imported only when a checkpoint of that family is loaded);
its module saves `family` among its hyperparameters. QCA checkpoints carry no `family` key.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule

from atheria.errors import one_line
from atheria.families import CHECKPOINT_DEFAULT, FAMILIES
from atheria.storage.finder import CorruptCheckpoint, load_checkpoint


def module_class(hparams: dict[str, Any]) -> type[LightningModule]:
    """The LightningModule class of the checkpoint's family; a one-line CorruptCheckpoint for an unknown one."""
    family = hparams.get("family", CHECKPOINT_DEFAULT)
    if family not in FAMILIES:
        raise CorruptCheckpoint(f"model family {family!r} is unknown; known: {', '.join(FAMILIES)}")
    module_name, class_name = FAMILIES[family].module_class.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def load_module(path: str | Path) -> tuple[LightningModule, dict[str, Any]]:
    """The trained module of a checkpoint, in eval mode on the CPU, and the checkpoint dict it came from."""
    ckpt = load_checkpoint(path)
    hparams, state = ckpt.get("hyper_parameters"), ckpt.get("state_dict")
    if not isinstance(hparams, dict) or not isinstance(state, dict):
        raise CorruptCheckpoint(f"{path}: has no hyper_parameters and state_dict to rebuild a model from")
    cls = module_class(hparams)
    try:
        module = cls(**hparams)
        module.load_state_dict(state, strict=module.strict_loading)  # LM checkpoints hold the adapters only
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CorruptCheckpoint(f"{path}: does not rebuild a {cls.__name__} ({one_line(exc)})") from exc
    return module.eval(), ckpt
