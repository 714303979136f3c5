"""Episode loss terms (survival, symmetry, complexity) and the survival_rate metric."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from atheria.qca.engine import energy
from atheria.qca.state import density


@dataclass(frozen=True)
class LossWeights:
    """Weights of the three terms; the reference used 10 / 5 / 1."""

    survival: float = 10.0
    symmetry: float = 5.0
    complexity: float = 1.0


def survival_loss(psi0: Tensor, psif: Tensor, target: float) -> Tensor:
    """|E_f / E_0 - target|: keep the given fraction of the initial energy alive."""
    return (energy(psif) / energy(psi0) - target).abs().mean()


def symmetry_loss(psif: Tensor) -> Tensor:
    """Mean squared difference between the amplitude field and its 90-degree rotation."""
    amp = (density(psif) + 1e-12).sqrt()
    return (amp - torch.rot90(amp, 1, dims=(1, 2))).square().mean()


def complexity_loss(psif: Tensor) -> Tensor:
    """-log(std of the per-cell density + 1e-6): rewards structure over a uniform field."""
    return -torch.log(density(psif).flatten(1).std(dim=1) + 1e-6).mean()


@torch.no_grad()
def survival_rate(psi0: Tensor, psif: Tensor, threshold: float) -> Tensor:
    """Fraction of cells, in [0, 1], whose final density is above `threshold` x the mean initial density."""
    floor = threshold * density(psi0).mean(dim=(1, 2), keepdim=True)
    return (density(psif) > floor).float().mean()


def episode_losses(psi0: Tensor, psif: Tensor, weights: LossWeights, survival_target: float = 0.8,
                   alive_threshold: float = 0.1) -> dict[str, Tensor]:
    """The weighted total `loss`, each term, `survival_rate` and `energy_ratio` of one episode."""
    terms = {
        "survival": survival_loss(psi0, psif, survival_target),
        "symmetry": symmetry_loss(psif),
        "complexity": complexity_loss(psif),
    }
    total = sum(getattr(weights, k) * v for k, v in terms.items())
    with torch.no_grad():
        ratio = (energy(psif) / energy(psi0)).mean()
    return {"loss": total, **terms, "survival_rate": survival_rate(psi0, psif, alive_threshold),
            "energy_ratio": ratio}
