"""DEEP_QCA law: a cell sees its own state and the fixed sum of its 8 neighbours, then per-cell layers.

TorchScript: scriptable.
"""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from atheria.models.base import Law
from atheria.models.mlp import cell_mlp


def neighbour_kernel(channels: int) -> Tensor:
    """A depthwise 3x3 kernel of ones with the centre masked: per channel, the sum of the 8 neighbours."""
    kernel = torch.ones(channels, 1, 3, 3)
    kernel[:, :, 1, 1] = 0.0
    return kernel


class DeepQCA(Law):
    """Local rule: [own state, neighbour sum] (4d channels) -> h -> h -> 2d, zero padding at the borders."""

    name = "DEEP_QCA"
    grid_multiple = 1

    def __init__(self, d_state: int, hidden_channels: int) -> None:
        super().__init__(d_state, hidden_channels)
        psi_channels = 2 * d_state
        self.register_buffer("neighbours", neighbour_kernel(psi_channels), persistent=False)
        self.net = cell_mlp(2 * psi_channels, hidden_channels, psi_channels)

    def forward(self, x: Tensor, memory: Optional[List[Tensor]] = None) -> Tuple[Tensor, List[Tensor]]:
        """Return the delta from each cell's own state and its neighbour sum; stateless."""
        neighbour_sum = F.conv2d(x, self.neighbours, padding=1, groups=x.shape[1])
        return self.net(torch.cat([x, neighbour_sum], dim=1)), []

    def channel_parts(self) -> Dict[str, Tuple[int, ...]]:
        """psi's halves, then its neighbour sum's halves, in; psi's halves out."""
        d = self.d_state
        return {"net.0.in": (d, d, d, d), "net.4.out": (d, d)}
