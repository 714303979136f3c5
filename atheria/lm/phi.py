"""Φ: a differentiable measure of how integrated a language model's hidden states are.

Φ here is the Gaussian mutual information between two halves of the representation, measured over the tokens
of a batch — the "integration" of Tononi's early Φ and of Barrett & Seth's practical Φ measures for time series
(PLoS Comput Biol 2011), which take the system as Gaussian so that information follows from covariances:

    I(A; B) = ½ [ log det Σ_A + log det Σ_B − log det Σ_AB ]    (nats, ≥ 0)
    Φ       = 10 · (1 − exp(−max(0, I − I_null) / k))           (in [0, 10), the scale of the reference code)

Hidden states [B, T, D] are first mapped by a fixed random orthonormal projection (seeded, never trained) to
2k features (k = 16), split into halves A and B, so that I / k is information per feature pair; Σ is their
covariance over all B·T tokens with a small ridge. A covariance of N samples finds information where there is
none: about k² / 2N nats for independent halves (Φ 0.7 at 128 tokens; 9.0 at 16, where Σ is singular). So
I_null, the same estimate with B's rows shuffled against A's (the pairs broken, each half's own statistics kept;
the mean of a few fixed shuffles), is subtracted: independent noise then scores Φ ≈ 0 at any token count. A batch
must hold at least ten tokens per feature; below that the null is as large as most signals. Everything is torch
ops, so Φ's gradient reaches the model. The reference computed its Φ with small learned networks and turned it
into a plain number before the loss, so no gradient ever reached the language model; here it does, and a test
checks it.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

PHI_SCALE = 10.0
FEATURES = 32  # the projection's width: 16 feature pairs
TOKENS_PER_FEATURE = 10  # the fewest tokens per feature a batch may give Φ
NULL_SHUFFLES = 4  # shuffles averaged into I_null: its spread is then below 0.02 Φ at ten tokens per feature


def features(hidden_size: int) -> int:
    """The projection's width for hidden states of `hidden_size`: FEATURES, or fewer (even) for a narrower model."""
    return min(FEATURES, hidden_size) // 2 * 2


def min_tokens(hidden_size: int) -> int:
    """The fewest tokens a batch must hold for Φ of hidden states of `hidden_size`."""
    return TOKENS_PER_FEATURE * features(hidden_size)


def phi_scale(info: Tensor, pairs: int) -> Tensor:
    """Φ on the reference's [0, 10) scale from `info` nats of information between halves of `pairs` features each."""
    return PHI_SCALE * (1.0 - torch.exp(-info.clamp_min(0.0) / pairs))


def gaussian_mutual_information(a: Tensor, b: Tensor, ridge: float = 1e-3) -> Tensor:
    """I(A;B) in nats of samples a [N, p] and b [N, q] under a joint Gaussian model."""
    x = torch.cat([a, b], dim=1).float()
    x = x - x.mean(dim=0, keepdim=True)
    cov = x.T @ x / max(1, x.shape[0] - 1)
    cov = cov + ridge * torch.eye(cov.shape[0], device=cov.device) * cov.diagonal().mean().detach().clamp_min(1e-6)
    p = a.shape[1]
    return 0.5 * (torch.logdet(cov[:p, :p]) + torch.logdet(cov[p:, p:]) - torch.logdet(cov))


class PhiMeter(nn.Module):
    """Φ of hidden states [B, T, D] through a fixed orthonormal projection to `features(D)` features (two halves),
    less the shuffled-pairs null."""

    def __init__(self, hidden_size: int, seed: int = 0) -> None:
        super().__init__()
        dims = features(hidden_size)
        self.seed, self.min_tokens = seed, min_tokens(hidden_size)
        g = torch.Generator().manual_seed(seed)
        projection, _ = torch.linalg.qr(torch.randn(hidden_size, dims, generator=g))
        self.register_buffer("projection", projection, persistent=False)

    def forward(self, hidden: Tensor) -> Tensor:
        z = hidden.reshape(-1, hidden.shape[-1]).float() @ self.projection
        n, half = z.shape[0], z.shape[1] // 2
        if n < self.min_tokens:
            raise ValueError(f"Φ needs at least {self.min_tokens} tokens per batch ({TOKENS_PER_FEATURE} per "
                             f"feature), got {n}: raise data.block_size x data.batch_size")
        a, b = z[:, :half], z[:, half:]
        g = torch.Generator(device=z.device).manual_seed(self.seed)
        null = torch.stack([gaussian_mutual_information(a, b[torch.randperm(n, generator=g, device=z.device)])
                            for _ in range(NULL_SHUFFLES)]).mean()
        return phi_scale(gaussian_mutual_information(a, b) - null, half)


def phi_penalty(phi: Tensor, target: float) -> Tensor:
    """How far Φ falls short of its target band [target, 10): zero once Φ reaches it, linear below."""
    return torch.relu(target - phi)
