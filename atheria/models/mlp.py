"""MLP law: the same small network applied to every cell on its own (1x1 convs).

TorchScript: scriptable.
"""
from typing import Dict, List, Optional, Tuple

from torch import Tensor, nn

from atheria.models.base import Law, output_head


def cell_mlp(in_channels: int, hidden_channels: int, out_channels: int) -> nn.Sequential:
    """Per-cell layers in -> h -> h -> out with ELU, ending in the near-zero output head."""
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden_channels, kernel_size=1),
        nn.ELU(),
        nn.Conv2d(hidden_channels, hidden_channels, kernel_size=1),
        nn.ELU(),
        output_head(hidden_channels, out_channels),
    )


class MLP(Law):
    """Each cell's delta depends on that cell's state only: 2d -> h -> h -> 2d."""

    name = "MLP"
    grid_multiple = 1

    def __init__(self, d_state: int, hidden_channels: int) -> None:
        super().__init__(d_state, hidden_channels)
        self.net = cell_mlp(2 * d_state, hidden_channels, 2 * d_state)

    def forward(self, x: Tensor, memory: Optional[List[Tensor]] = None) -> Tuple[Tensor, List[Tensor]]:
        """Return the per-cell delta; stateless, so memory stays empty."""
        return self.net(x), []

    def channel_parts(self) -> Dict[str, Tuple[int, ...]]:
        """psi's halves in and out."""
        d = self.d_state
        return {"net.0.in": (d, d), "net.4.out": (d, d)}
