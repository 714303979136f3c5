"""What the rest of Atheria asks of a model family, as one record per family (atheria/families/qca.py, lm.py), so
that nothing outside this package dispatches on `model.family`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

from omegaconf import DictConfig

if TYPE_CHECKING:
    import lightning.pytorch as pl


@dataclass(frozen=True)
class Family:
    """A model family's answers; each takes a validated config (`check` takes the unvalidated one)."""

    name: str  # the value of model.family, saved as the `family` hyperparameter of its checkpoints
    module_class: str  # "package.module:Class" of its LightningModule, imported only when a checkpoint is loaded
    key_metric: tuple[str, str]  # the logged metric that says how training goes, and its plot title
    check: Callable[[DictConfig], None]  # refuse this family's bad keys in one line (ConfigError)
    check_needs: Callable[[DictConfig], None]  # refuse, before any work, what would fail once training starts
    build_module: Callable[[DictConfig], pl.LightningModule]  # plain values only, for safe checkpoints
    build_datamodule: Callable[[DictConfig], pl.LightningDataModule]
    law_keys: Callable[[DictConfig], list[str]]  # the config keys a resumed checkpoint must match, each saved as the
    # hyperparameter named by its last part: the weights' shapes (model.*), and what they are trained for
    saved_before: dict[str, Any]  # hyperparameter -> the value checkpoints saved before it existed were trained with
    describe: Callable[[DictConfig], str]  # what a run trains, in a few words
    law_steps: Callable[[DictConfig], int]  # law forwards in an episode, timed one by one; 0 when there is no law
    cell_steps: Optional[Callable[[DictConfig], int]]  # cell-steps of one episode, to plan from a speed; None: none
    evaluate_every: Callable[[DictConfig], int]  # episodes between the module's own held-out evaluations (its
    # evaluate(): val/loss ranks the checkpoints saved then); 0: none
    validate_every: Callable[[DictConfig], int]  # episodes between Lightning's validations of the module (val/loss
    # then ranks the checkpoints saved at them); 0: none. With neither, checkpoints are ranked by train/loss_smooth
