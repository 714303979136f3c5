"""One QCA step and an episode's rollout: psi <- psi + law(psi) - gamma*psi, then normalisation.

A rollout keeps psi in its real layout [B, H, W, 2*d_state] (real parts, then imaginary) from the first step to
the last: the law's view is a free permute of it (channels-last), and the update, energy and cap are plain real
arithmetic on it, with the same values as the complex forms, so no step pays for complex <-> real copies.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, List, Optional

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from atheria.qca.state import density, episode_generator

NORMALIZATIONS = ("cap", "none")
Memory = Optional[List[Tensor]]


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
    compile: bool = False


def energy(psi: Tensor) -> Tensor:
    """Total probability mass of each state in the batch: [B]."""
    return density(psi).sum(dim=(1, 2))


def real_layout(psi: Tensor) -> Tensor:
    """Complex [B, H, W, d] -> real [B, H, W, 2d], real parts first: the storage of the laws' view (to_real)."""
    return torch.cat([psi.real, psi.imag], dim=-1)


def complex_layout(z: Tensor) -> Tensor:
    """Real [B, H, W, 2d] -> complex [B, H, W, d], the inverse of real_layout."""
    re, im = z.chunk(2, dim=-1)
    return torch.complex(re.contiguous(), im.contiguous())


def real_energy(z: Tensor) -> Tensor:
    """energy() of a state in the real layout, summed in the same order, so the values are the same bits."""
    d = z.shape[-1] // 2
    return (z[..., :d].square().sum(-1) + z[..., d:].square().sum(-1)).sum(dim=(1, 2))


def advance(law: Callable, z: Tensor, memory: Memory, e0: Tensor, gamma: float,
            normalize: str) -> tuple[Tensor, List[Tensor]]:
    """One Euler step of the law with decay on the real layout; `cap` rescales a state only when its energy
    exceeds e0.

    Capping instead of renormalising every cell (the reference's defect) lets energy decay, so the
    survival term keeps a gradient and survival_rate varies.
    """
    delta, memory = law(z.permute(0, 3, 1, 2), memory)
    z = z * (1.0 - gamma) + delta.permute(0, 2, 3, 1).float()
    if normalize == "cap":
        scale = (e0 / real_energy(z).clamp_min(1e-12)).sqrt().clamp(max=1.0)
        z = z * scale.view(-1, 1, 1, 1)
    return z, memory


@functools.cache
def compiled_advance() -> Callable:
    """`advance` through torch.compile (qca.compile=true): the law and the update fused by Inductor."""
    return torch.compile(advance)


def step(law: nn.Module, psi: Tensor, memory: Memory, e0: Tensor, gamma: float,
         normalize: str) -> tuple[Tensor, List[Tensor]]:
    """One step of a complex psi (see `advance`); a rollout stays in the real layout instead."""
    z, memory = advance(law, real_layout(psi), memory, e0, gamma, normalize)
    return complex_layout(z), memory


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
    `bptt_window=k` runs all but the last k steps without a graph (truncated backpropagation);
    `compile` runs each step through torch.compile.
    """
    e0 = energy(psi0)
    rate = noise_rate(physics, episode)
    g = episode_generator(seed, episode if sample is None else sample, salt=1) if rate > 0 else None
    first_graph_step = physics.steps - physics.bptt_window if physics.bptt_window > 0 else 0
    grad_on = torch.is_grad_enabled()
    one_step = compiled_advance() if physics.compile else advance
    z, memory = real_layout(psi0), None
    for t in range(physics.steps):
        with torch.set_grad_enabled(grad_on and t >= first_graph_step):
            if physics.checkpoint_steps and torch.is_grad_enabled():
                z, memory = checkpoint(one_step, law, z, memory, e0, physics.gamma, physics.normalize,
                                       use_reentrant=False)
            else:
                z, memory = one_step(law, z, memory, e0, physics.gamma, physics.normalize)
            if g is not None:
                z = real_layout(apply_noise(complex_layout(z), rate, g))
    return complex_layout(z)
