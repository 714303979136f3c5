"""One QCA step and an episode's rollout: psi <- psi + law(psi) - gamma*psi, then normalisation."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from atheria.qca.state import density, episode_generator, to_complex, to_real

NORMALIZATIONS = ("cap", "none")


@dataclass(frozen=True)
class Physics:
    """How an episode evolves; mirrors the `qca.*` config keys."""

    steps: int = 50
    gamma: float = 0.001
    normalize: str = "cap"
    checkpoint_steps: bool = False
    bptt_window: int = 0
    noise: bool = False
    noise_max: float = 0.05
    noise_ramp: int = 2000


def energy(psi: Tensor) -> Tensor:
    """Total probability mass of each state in the batch: [B]."""
    return density(psi).sum(dim=(1, 2))


def step(law: nn.Module, psi: Tensor, memory: Optional[List[Tensor]], e0: Tensor, gamma: float,
         normalize: str) -> tuple[Tensor, List[Tensor]]:
    """One Euler step of the law with decay; `cap` rescales a state only when its energy exceeds e0.

    Capping instead of renormalising every cell (the reference's defect) lets energy decay, so the
    survival term keeps a gradient and survival_rate varies.
    """
    delta, memory = law(to_real(psi), memory)
    psi = psi * (1.0 - gamma) + to_complex(delta)
    if normalize == "cap":
        scale = (e0 / energy(psi).clamp_min(1e-12)).sqrt().clamp(max=1.0)
        psi = psi * scale.view(-1, 1, 1, 1)
    return psi, memory


def noise_rate(physics: Physics, episode: int) -> float:
    """Per-cell phase-flip probability of the noise curriculum at this episode (0 when noise is off)."""
    if not physics.noise:
        return 0.0
    return min(physics.noise_max, physics.noise_max * episode / max(1, physics.noise_ramp))


def apply_noise(psi: Tensor, rate: float, g: torch.Generator) -> Tensor:
    """Random phase rotations of cells with probability `rate`, and (p 0.2 per step) sign flips at rate/10."""
    b, h, w, _ = psi.shape
    u = torch.rand(3, b, h, w, 1, generator=g).to(psi.device)
    theta = torch.where(u[0] < rate, u[1] * (2 * math.pi), torch.zeros_like(u[1]))
    phase = torch.polar(torch.ones_like(theta), theta)
    if torch.rand((), generator=g).item() < 0.2:
        phase = torch.where(u[2] < rate / 10, -phase, phase)
    return psi * phase


def rollout(law: nn.Module, psi0: Tensor, physics: Physics, seed: int = 0, episode: int = 0,
            sample: Optional[int] = None) -> Tensor:
    """Evolve psi0 for `physics.steps` steps; returns the final state with the configured gradient path.

    The noise rate follows the curriculum at `episode`; its draws are seeded by (seed, sample), sample defaulting
    to the episode (under DDP each rank plays its own sample of the episode).
    `checkpoint_steps` recomputes each step's activations in backward (memory O(1) in steps);
    `bptt_window=k` runs all but the last k steps without a graph (truncated backpropagation).
    """
    e0 = energy(psi0)
    rate = noise_rate(physics, episode)
    g = episode_generator(seed, episode if sample is None else sample, salt=1) if rate > 0 else None
    first_graph_step = physics.steps - physics.bptt_window if physics.bptt_window > 0 else 0
    grad_on = torch.is_grad_enabled()
    psi, memory = psi0, None
    for t in range(physics.steps):
        with torch.set_grad_enabled(grad_on and t >= first_graph_step):
            if physics.checkpoint_steps and torch.is_grad_enabled():
                psi, memory = checkpoint(step, law, psi, memory, e0, physics.gamma, physics.normalize,
                                         use_reentrant=False)
            else:
                psi, memory = step(law, psi, memory, e0, physics.gamma, physics.normalize)
            if g is not None:
                psi = apply_noise(psi, rate, g)
    return psi
