"""Φ: a differentiable measure of how integrated a language model's hidden states are.

Φ here is the Gaussian mutual information between two halves of the representation, measured over the tokens
of a batch — the "integration" of Tononi's early Φ and of Barrett & Seth's practical Φ measures for time series
(PLoS Comput Biol 2011), which take the system as Gaussian so that information follows from covariances:

    I(A; B) = ½ [ log det Σ_A + log det Σ_B − log det Σ_AB ]    (nats, ≥ 0)
    Φ       = 10 · (1 − exp(−I / k))                              (in [0, 10), the scale of the reference code)

Hidden states [B, T, D] are first mapped by a fixed random orthonormal projection (seeded, never trained) to
2k features (k = 16), split into halves A and B, so that isotropic noise has Φ ≈ 0 and I / k is information
per feature pair; Σ is their covariance over all B·T tokens with a small ridge, so the
estimate is defined even for few tokens. Everything is torch ops, so Φ's gradient reaches the model.
The reference computed its Φ with small learned networks and turned it into a plain number before the loss,
so no gradient ever reached the language model; here it does, and a test checks it.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

PHI_SCALE = 10.0


def gaussian_mutual_information(a: Tensor, b: Tensor, ridge: float = 1e-3) -> Tensor:
    """I(A;B) in nats of samples a [N, p] and b [N, q] under a joint Gaussian model."""
    x = torch.cat([a, b], dim=1).float()
    x = x - x.mean(dim=0, keepdim=True)
    cov = x.T @ x / max(1, x.shape[0] - 1)
    cov = cov + ridge * torch.eye(cov.shape[0], device=cov.device) * cov.diagonal().mean().detach().clamp_min(1e-6)
    p = a.shape[1]
    return 0.5 * (torch.logdet(cov[:p, :p]) + torch.logdet(cov[p:, p:]) - torch.logdet(cov))


class PhiMeter(nn.Module):
    """Φ of hidden states [B, T, D] through a fixed orthonormal projection to `dims` features (two halves)."""

    def __init__(self, hidden_size: int, dims: int = 32, seed: int = 0) -> None:
        super().__init__()
        dims = min(dims, hidden_size) // 2 * 2
        g = torch.Generator().manual_seed(seed)
        projection, _ = torch.linalg.qr(torch.randn(hidden_size, dims, generator=g))
        self.register_buffer("projection", projection, persistent=False)

    def forward(self, hidden: Tensor) -> Tensor:
        z = hidden.reshape(-1, hidden.shape[-1]).float() @ self.projection
        half = z.shape[1] // 2
        mi = gaussian_mutual_information(z[:, :half], z[:, half:]).clamp_min(0.0)
        return PHI_SCALE * (1.0 - torch.exp(-mi / half))


def phi_penalty(phi: Tensor, target: float) -> Tensor:
    """How far Φ falls short of its target band [target, 10): zero once Φ reaches it, linear below."""
    return torch.relu(target - phi)
