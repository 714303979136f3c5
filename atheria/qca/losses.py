"""Episode objectives (`qca.objective`): three terms, survival, symmetry and complexity, and the survival_rate and
energy_ratio metrics.

`bounded` (the default): each term in [0, 1], the same for any grid size and d_state on a structureless field, with
a gradient wherever the law shapes the field (no dead zone under the cap: no term reads only the total energy), and
the total their weighted mean, in [0, 1].
`reference`: the earlier research code's formula, kept to reproduce its runs; its survival term has no gradient when
the cap holds the energy at its initial value, and its minimum piles all energy onto a few cells.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from atheria.qca.engine import energy
from atheria.qca.state import density

ALIVE_WIDTH = 0.5  # the soft alive share's width in log-density: a cell at half the threshold counts 0.2, at twice 0.8
# Structure must stand out: fluctuations of the density below this share of its mean count as no structure (a floor
# added to their power), so a law cannot score symmetry or complexity by flattening the field to near-uniform and
# leaving a faint, smooth, symmetric ripple.
CONTRAST_FLOOR = 0.1


@dataclass(frozen=True)
class LossWeights:
    """Weights of the three terms; the reference used 10 / 5 / 1."""

    survival: float = 10.0
    symmetry: float = 5.0
    complexity: float = 1.0


def _alive_floor(psi0: Tensor, threshold: float) -> Tensor:
    """The density a cell must exceed to count as alive: `threshold` x the episode's mean initial density, [B, 1, 1]."""
    return threshold * density(psi0).mean(dim=(1, 2), keepdim=True)


def soft_alive_share(psi0: Tensor, psif: Tensor, threshold: float) -> Tensor:
    """The share of cells alive, smoothed in log-density so that it has a gradient at every cell: [B] in [0, 1]."""
    margin = torch.log(density(psif) + 1e-30) - torch.log(_alive_floor(psi0, threshold))
    return torch.sigmoid(margin / ALIVE_WIDTH).flatten(1).mean(dim=1)


def _floor_power(rho: Tensor) -> Tensor:
    """The fluctuation power, summed over cells, of a field whose cells deviate by CONTRAST_FLOOR x its mean: [B, 1]."""
    cells = rho.shape[1] * rho.shape[2]
    return (CONTRAST_FLOOR * rho.mean(dim=(1, 2))).square().unsqueeze(1) * cells + 1e-30


def rotation_correlation(rho: Tensor) -> Tensor:
    """The correlation, over cells, of a density field [B, H, W] with its own 90-degree rotation, fluctuations
    fainter than CONTRAST_FLOOR x the mean density damped: [B] in [-1, 1] (1: four-fold symmetric with contrast; 0: a
    field of independent cells, or a nearly uniform one)."""
    a = rho - rho.mean(dim=(1, 2), keepdim=True)
    floor = _floor_power(rho).squeeze(1)
    return (a * torch.rot90(a, 1, dims=(1, 2))).sum(dim=(1, 2)) / (a.square().sum(dim=(1, 2)) + floor)


def spectral_entropy(rho: Tensor) -> Tensor:
    """The entropy of a density field's power spectrum over its non-constant frequencies, a floor of
    CONTRAST_FLOOR x the mean density spread evenly over them, divided by its largest value: [B] in [0, 1] (near 1:
    spatial noise or a nearly uniform field; low: contrast gathered at a few spatial scales)."""
    power = torch.fft.fft2(rho - rho.mean(dim=(1, 2), keepdim=True)).abs().square().flatten(1)[:, 1:]
    cells = rho.shape[1] * rho.shape[2]
    power = power + _floor_power(rho) * cells / power.shape[1]  # Parseval: the spectrum sums to cells x the power
    p = power / power.sum(dim=1, keepdim=True)
    return -(p * p.log()).sum(dim=1) / math.log(p.shape[1])


def bounded_terms(psi0: Tensor, psif: Tensor, survival_target: float, alive_threshold: float) -> dict[str, Tensor]:
    """survival = 1 - the soft share of cells alive at the end; symmetry = (1 - correlation with the 90-degree
    rotation) / 2; complexity = the normalised spectral entropy of the final density. Symmetry and complexity ignore
    the field's scale; `survival_target` is the reference objective's."""
    rho = density(psif)
    return {"survival": (1 - soft_alive_share(psi0, psif, alive_threshold)).mean(),
            "symmetry": ((1 - rotation_correlation(rho)) / 2).mean(),
            "complexity": spectral_entropy(rho).mean()}


def reference_terms(psi0: Tensor, psif: Tensor, survival_target: float, alive_threshold: float) -> dict[str, Tensor]:
    """survival = |E_final / E_initial - target|; symmetry = the mean squared difference of the amplitude field and
    its 90-degree rotation; complexity = -log(std of the per-cell density + 1e-6)."""
    amp = (density(psif) + 1e-12).sqrt()
    return {"survival": (energy(psif) / energy(psi0) - survival_target).abs().mean(),
            "symmetry": (amp - torch.rot90(amp, 1, dims=(1, 2))).square().mean(),
            "complexity": -torch.log(density(psif).flatten(1).std(dim=1) + 1e-6).mean()}


Terms = Callable[[Tensor, Tensor, float, float], dict[str, Tensor]]
OBJECTIVES: dict[str, tuple[Terms, bool]] = {  # name -> (its terms, whether the total is their weighted mean)
    "bounded": (bounded_terms, True),
    "reference": (reference_terms, False),
}


@torch.no_grad()
def survival_rate(psi0: Tensor, psif: Tensor, threshold: float) -> Tensor:
    """Fraction of cells, in [0, 1], whose final density is above `threshold` x the mean initial density."""
    return (density(psif) > _alive_floor(psi0, threshold)).float().mean()


def episode_losses(psi0: Tensor, psif: Tensor, weights: LossWeights, objective: str = "bounded",
                   survival_target: float = 0.8, alive_threshold: float = 0.1) -> dict[str, Tensor]:
    """The weighted total `loss` of the objective, each term, and the final state's `survival_rate` and
    `energy_ratio`."""
    terms_of, mean = OBJECTIVES[objective]
    terms = terms_of(psi0, psif, survival_target, alive_threshold)
    total = sum(getattr(weights, k) * v for k, v in terms.items())
    if mean:
        total = total / (weights.survival + weights.symmetry + weights.complexity)
    with torch.no_grad():
        ratio = (energy(psif) / energy(psi0)).mean()
    return {"loss": total, **terms, "survival_rate": survival_rate(psi0, psif, alive_threshold),
            "energy_ratio": ratio}
