"""The QCA state psi: complex [B, H, W, d_state], and the real view the laws see."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

_SEED_STRIDE = 1_000_003  # keeps (seed, episode) pairs from colliding for any realistic episode count
HELD_OUT_SALT = 2  # the held-out episodes' stream: training plays salt 0, the noise curriculum draws from salt 1


def episode_generator(seed: int, episode: int, salt: int = 0) -> torch.Generator:
    """A CPU generator seeded by (seed, episode, salt), so every episode is reproducible on its own."""
    return torch.Generator().manual_seed((seed * _SEED_STRIDE + episode) * 8 + salt)


def initial_state(seed: int, episode: int, batch: int, grid: int, d_state: int, held_out: bool = False) -> Tensor:
    """A batch of `batch` random complex Gaussian states with mean cell density 1, member i a pure function of (seed,
    episode x batch + i): a batch holds that many distinct episodes, and batch 1 is episode `episode` itself.
    `held_out` draws from a stream no training episode plays."""
    salt = HELD_OUT_SALT if held_out else 0
    members = [episode_generator(seed, episode * batch + i, salt) for i in range(batch)]
    parts = torch.cat([torch.randn(2, 1, grid, grid, d_state, generator=g) for g in members], dim=1)
    psi = torch.complex(parts[0], parts[1])
    return psi / density(psi).mean(dim=(1, 2), keepdim=True).sqrt().unsqueeze(-1)


def density(psi: Tensor) -> Tensor:
    """Per-cell probability density |psi|^2 summed over the state dimension: [B, H, W]."""
    return psi.real.square().sum(-1) + psi.imag.square().sum(-1)


def density_and_phase(psi: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The first state of a batch as arrays to draw (atheria.observe.frames): its density and the phase of its
    first component."""
    return density(psi[:1])[0].float().cpu().numpy(), psi[0, ..., 0].angle().float().cpu().numpy()


def to_real(psi: Tensor) -> Tensor:
    """Complex [B, H, W, d] -> real [B, 2d, H, W]: real parts first, then imaginary parts."""
    return torch.cat([psi.real, psi.imag], dim=-1).permute(0, 3, 1, 2)


def to_complex(x: Tensor) -> Tensor:
    """Real [B, 2d, H, W] -> complex [B, H, W, d], the inverse of to_real."""
    re, im = x.permute(0, 2, 3, 1).float().chunk(2, dim=-1)
    return torch.complex(re.contiguous(), im.contiguous())
