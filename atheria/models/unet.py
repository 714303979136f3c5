"""UNET law: a two-level convolutional U-Net (about 7 M parameters at d_state 8, hidden 64).

TorchScript: scriptable.
"""
import math
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from atheria.models.base import Law, output_head


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with the reference's C//8 groups (1 group up to 8 channels), reduced to a divisor of C
    so that any width works."""
    groups = math.gcd(channels, channels // 8) if channels > 8 else 1
    return nn.GroupNorm(groups, channels)


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """(3x3 conv without bias -> GroupNorm -> ELU) x2, zero-padded so the grid keeps its size."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        group_norm(out_channels),
        nn.ELU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
        group_norm(out_channels),
        nn.ELU(),
    )


def upsample(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    """A transposed conv that doubles the grid side."""
    return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)


class UNet(Law):
    """h at HxW -> 2h at H/2 -> 4h at H/4 -> bottleneck 8h -> up with skip 4h -> up with skip h -> delta."""

    name = "UNET"
    grid_multiple = 4

    def __init__(self, d_state: int, hidden_channels: int) -> None:
        super().__init__(d_state, hidden_channels)
        psi_channels, h = 2 * d_state, hidden_channels
        self.lift = conv_block(psi_channels, h)
        self.down1 = nn.Sequential(nn.MaxPool2d(2), conv_block(h, 2 * h))
        self.down2 = nn.Sequential(nn.MaxPool2d(2), conv_block(2 * h, 4 * h))
        self.bottleneck = conv_block(4 * h, 8 * h)
        self.up1 = upsample(8 * h, 4 * h)
        self.fuse1 = conv_block(4 * h + 2 * h, 4 * h)
        self.up2 = upsample(4 * h, 2 * h)
        self.fuse2 = conv_block(2 * h + h, h)
        self.head = output_head(h, psi_channels)

    def forward(self, x: Tensor, memory: Optional[List[Tensor]] = None) -> Tuple[Tensor, List[Tensor]]:
        """Return the delta for psi's real view x; the U-Net is stateless, so memory stays empty."""
        full = self.lift(x)
        half = self.down1(full)
        deep = self.bottleneck(self.down2(half))
        half = self.fuse1(torch.cat([self.up1(deep), half], dim=1))
        full = self.fuse2(torch.cat([self.up2(half), full], dim=1))
        return self.head(full), []

    def channel_parts(self) -> Dict[str, Tuple[int, ...]]:
        """psi's halves in and out; the up-sampled channels, then the skip, into each fuse block."""
        d, h = self.d_state, self.hidden_channels
        return {"lift.0.in": (d, d), "fuse1.0.in": (4 * h, 2 * h), "fuse2.0.in": (2 * h, h), "head.out": (d, d)}
