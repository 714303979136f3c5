"""The M-law contract: a network that maps the real view of psi to a delta of the same shape."""
from typing import Dict, List, Optional, Tuple

from torch import Tensor, nn

OUTPUT_INIT_STD = 1e-5


class Law(nn.Module):
    """An M-law: maps the real view of psi [B, 2*d_state, H, W] to a delta of the same shape."""

    name: str
    grid_multiple: int

    def __init__(self, d_state: int, hidden_channels: int) -> None:
        super().__init__()
        self.d_state = d_state
        self.hidden_channels = hidden_channels

    def forward(self, x: Tensor, memory: Optional[List[Tensor]] = None) -> Tuple[Tensor, List[Tensor]]:
        """Return (delta, memory); stateless laws return [], stateful ones the state for the next step."""
        raise NotImplementedError

    def channel_parts(self) -> Dict[str, Tuple[int, ...]]:
        """Channel axes made of parts, as '{module}.in' or '{module}.out' -> part sizes (psi's real and imaginary
        halves, a concatenated skip), so a law of another size is seeded part by part (atheria.models.transfer)."""
        return {}


def output_head(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A 1x1 conv to the delta with weights N(0, 1e-5) and zero bias, so the initial delta is small
    (the physics loss needs it) yet every earlier layer still receives gradient."""
    head = nn.Conv2d(in_channels, out_channels, kernel_size=1)
    nn.init.normal_(head.weight, std=OUTPUT_INIT_STD)
    nn.init.zeros_(head.bias)
    return head
