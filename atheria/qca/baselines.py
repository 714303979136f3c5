"""The trivial laws a trained one must beat, scored on held-out episodes under the run's own objective: the zero law
(psi only decays by gamma) and the best uniform law psi <- c psi, c fitted on those episodes (which favours the
baseline, never the trained law)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

import torch
from torch import Tensor

from atheria.qca.engine import Physics, rollout
from atheria.qca.losses import LossWeights, episode_losses

Law = Callable[..., tuple[Tensor, list[Tensor]]]
C_RANGE = (0.5, 1.5)  # the uniform factors searched
C_GRID = 101  # points of the coarse search (steps of 0.01: the reference objective's valley is that narrow); a
# golden-section search then refines between the best point's neighbours
TIE = 1e-6  # losses this close (relative) are one: the search keeps the factor nearer 1


@dataclass(frozen=True)
class Scoring:
    """How an episode is scored: the physics it plays (without the noise curriculum: held-out episodes are the same
    at every evaluation) and the objective with its settings."""

    physics: Physics
    weights: LossWeights
    objective: str
    survival_target: float
    alive_threshold: float

    @classmethod
    def of(cls, physics: Physics, weights: LossWeights, objective: str, survival_target: float,
           alive_threshold: float) -> Scoring:
        return cls(replace(physics, noise=False, compile=False), weights, objective, survival_target,
                   alive_threshold)


def uniform_law(c: float, gamma: float) -> Law:
    """psi <- c psi as an Atheria law (the update adds the law's delta to (1 - gamma) psi)."""
    return lambda x, memory=None: ((c - 1 + gamma) * x, [])


@torch.no_grad()
def mean_terms(law: Law, states: Sequence[Tensor], scoring: Scoring) -> dict[str, float]:
    """The objective's loss and terms, and the metrics, averaged over the held-out initial states."""
    totals: dict[str, float] = {}
    for psi0 in states:
        out = episode_losses(psi0, rollout(law, psi0, scoring.physics), scoring.weights, scoring.objective,
                             scoring.survival_target, scoring.alive_threshold)
        for k, v in out.items():
            totals[k] = totals.get(k, 0.0) + float(v)
    return {k: v / len(states) for k, v in totals.items()}


def _loss(c: float, states: Sequence[Tensor], scoring: Scoring) -> float:
    return mean_terms(uniform_law(c, scoring.physics.gamma), states, scoring)["loss"]


def fit_uniform(states: Sequence[Tensor], scoring: Scoring) -> tuple[float, float]:
    """The factor c in C_RANGE whose law psi <- c psi scores best on `states`, and its loss: a coarse grid, then a
    golden-section search between the best point's neighbours."""
    lo, hi = C_RANGE
    grid = [lo + (hi - lo) * i / (C_GRID - 1) for i in range(C_GRID)]
    losses = [_loss(c, states, scoring) for c in grid]
    low = min(losses)
    # Ties (under the cap every c >= 1 plays the same episode) go to the factor nearest 1: the law that does least.
    best = min((i for i in range(C_GRID) if losses[i] <= low + TIE * abs(low)), key=lambda i: abs(grid[i] - 1))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, C_GRID - 1)]
    found = (grid[best], losses[best])
    ratio = (5 ** 0.5 - 1) / 2
    for _ in range(12):
        c1, c2 = b - ratio * (b - a), a + ratio * (b - a)
        l1, l2 = _loss(c1, states, scoring), _loss(c2, states, scoring)
        for c, loss in ((c1, l1), (c2, l2)):
            if loss < found[1] - TIE * abs(found[1]):
                found = (c, loss)
        a, b = (a, c2) if l1 <= l2 else (c1, b)
    return found


def trivial_scores(states: Sequence[Tensor], scoring: Scoring) -> dict[str, float]:
    """The zero law's loss and the best uniform law's, under the labels reports show."""
    zero = _loss(1 - scoring.physics.gamma, states, scoring)
    c, uniform = fit_uniform(states, scoring)
    return {"zero law": zero, f"uniform law psi <- {c:.3f} psi": uniform}


def gain_over(trivial: float, loss: float) -> float:
    """(L_trivial - L) / |L_trivial|: the share of the best trivial law's loss a law removes (0: no better than it;
    negative: worse)."""
    return (trivial - loss) / abs(trivial) if trivial else 0.0
