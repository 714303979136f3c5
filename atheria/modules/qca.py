"""The QCA LightningModule: one training step is one episode of one M-law."""
from __future__ import annotations

import copy
from typing import Any, Callable, Optional

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_only
from PIL import Image
from torch import Tensor

from atheria.models import build_law
from atheria.observe.baselines import Baselines
from atheria.observe.frames import frame
from atheria.qca import LossWeights, Physics, energy, episode_losses, rollout, step
from atheria.qca.baselines import Scoring, gain_over, mean_terms, trivial_scores
from atheria.qca.state import density_and_phase

LOGGED = ("survival", "symmetry", "complexity", "survival_rate", "energy_ratio")
GAIN = "qca/gain_over_trivial"


class QCAModule(pl.LightningModule):
    """Trains a law (UNET, SNN_UNET, MLP, DEEP_QCA) by backpropagating an episode's loss through its steps."""

    def __init__(self, arch: str, d_state: int, hidden_channels: int, physics: dict[str, Any],
                 weights: dict[str, float], survival_target: float = 0.8, alive_threshold: float = 0.1,
                 lr: float = 1e-4, weight_decay: float = 1e-5, smoothing: float = 0.1, seed: int = 42,
                 objective: str = "reference") -> None:
        super().__init__()  # objective: "reference" for checkpoints saved before it was a hyperparameter
        self.save_hyperparameters(logger=False)  # the loggers get the whole composed config (describe_run)
        self.law = build_law(arch, d_state, hidden_channels)
        self.physics = Physics(**physics)
        self.weights = LossWeights(**weights)
        # Exponential moving average of the loss, saved in checkpoints so a resume continues it exactly.
        self.register_buffer("loss_smooth", torch.tensor(float("nan")))
        self.scoring = Scoring.of(self.physics, self.weights, objective, survival_target, alive_threshold)
        self.baselines: Optional[Baselines] = None  # the trivial laws' held-out scores, measured at fit start
        self._held_out: list[Tensor] = []
        self._showcase: Optional[Tensor] = None  # the state rollout pictures start from (the data's showcase())
        self.step_metrics: dict[str, Tensor] = {}

    def on_fit_start(self) -> None:
        """Score the trivial laws on the data's held-out episodes (none: no baselines) and say so."""
        held_out = getattr(self.trainer.datamodule, "held_out", None)
        showcase = getattr(self.trainer.datamodule, "showcase", None)
        self._showcase = showcase().to(self.device) if showcase else None
        self._held_out = [psi0.to(self.device) for psi0 in held_out()] if held_out else []
        if self._held_out:
            scores = trivial_scores(self._held_out, self.scoring)
            self.baselines = Baselines("val/loss", scores, len(self._held_out), GAIN)
            rank_zero_only(print)(self.baselines.line())

    def evaluator(self) -> Callable[[], dict[str, float]]:
        """A function that scores the law as it is now (a copy, so it may run on another thread while training goes
        on) on the held-out episodes: the objective, terms and metrics as val/*, and the gain over the best trivial
        law."""
        law, held_out, scoring = copy.deepcopy(self.law).eval(), self._held_out, self.scoring
        best_trivial = self.baselines.best()[1] if self.baselines is not None else None

        @torch.no_grad()
        def evaluate() -> dict[str, float]:
            scores = mean_terms(law, held_out, scoring)
            out = {f"val/{k}": v for k, v in scores.items()}
            if best_trivial is not None:
                out[GAIN] = gain_over(best_trivial, scores["loss"])
            return out

        return evaluate

    def film(self, frames: int) -> Optional[Callable[[], list[Image.Image]]]:
        """A function that plays the law as it is now (a copy, so it may run on another thread while training goes
        on) on the data's showcase state, without noise, and draws about `frames` states evenly spaced from the
        first to the last (atheria.observe.frames). None without a showcase state."""
        if self._showcase is None:
            return None
        law, physics, psi0 = copy.deepcopy(self.law).eval(), self.physics, self._showcase
        every = max(1, physics.steps // max(1, frames - 1))

        @torch.no_grad()
        def play() -> list[Image.Image]:
            psi, memory, e0 = psi0, None, energy(psi0)
            pictures = [frame(*density_and_phase(psi), 0)]
            for t in range(1, physics.steps + 1):
                psi, memory = step(law, psi, memory, e0, physics.gamma, physics.normalize)
                if t % every == 0 or t == physics.steps:
                    pictures.append(frame(*density_and_phase(psi), t))
            return pictures

        return play

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        episode, sample = int(batch["episode"]), int(batch["sample"])
        hp = self.hparams
        psif = rollout(self.law, batch["psi0"], self.physics, hp.seed, episode, sample)
        out = episode_losses(batch["psi0"], psif, self.weights, hp.objective, hp.survival_target, hp.alive_threshold)
        loss = out["loss"].detach()
        first = torch.isnan(self.loss_smooth)
        self.loss_smooth.copy_(torch.where(first, loss, self.loss_smooth + hp.smoothing * (loss - self.loss_smooth)))
        # The episode's metrics, for atheria.callbacks.history.EpisodeHistory (self.log costs too much per episode).
        self.step_metrics = {"train/loss": loss, "train/loss_smooth": self.loss_smooth,
                             **{f"train/{k}": out[k].detach() for k in LOGGED}}
        return out["loss"]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.law.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)

    def export_torchscript(self, path: str) -> str:
        """Write the law as a verified TorchScript file usable without Atheria (see atheria.modules.export)."""
        from atheria.modules.export import export_law

        hp, law = self.hparams, self.law
        meta = {"law": law.name, "arch": hp.arch, "d_state": hp.d_state, "hidden_channels": hp.hidden_channels,
                "grid_multiple": law.grid_multiple, "gamma": self.physics.gamma, "normalize": self.physics.normalize}
        return export_law(law, path, meta)
