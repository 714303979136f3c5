"""SNN_UNET law: a one-level U-Net of leaky integrate-and-fire neurons whose membranes persist across
an episode's QCA steps (passed in and out as memory).

TorchScript: scriptable.
Own LIF rather than snntorch: snn.Leaky stores the membrane on the module inside forward (with mem=None it
silently continues the previous call's membrane) and cannot be scripted; this one keeps no state.
"""
import math
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from atheria.models.base import Law, output_head
from atheria.models.unet import group_norm, upsample


def fire(overshoot: Tensor, slope: float) -> Tensor:
    """Binary spike where the membrane exceeds threshold; the backward pass uses the arctan surrogate
    d/dx = (slope/2) / (1 + (pi/2 * slope * x)^2), so gradient flows whether or not a neuron fired."""
    spike = (overshoot > 0).to(overshoot.dtype)
    smooth = torch.atan(math.pi / 2 * slope * overshoot) / math.pi
    return spike + (smooth - smooth.detach())


class LeakyIntegrateFire(nn.Module):
    """One LIF time step: membrane = beta * membrane + current, spike over threshold, reset by subtraction."""

    def __init__(self, beta: float = 0.85, threshold: float = 1.0, slope: float = 2.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold
        self.slope = slope

    def forward(self, current: Tensor, membrane: Tensor) -> Tuple[Tensor, Tensor]:
        """Return (spike, next membrane); the reset is detached, as is usual for surrogate training."""
        membrane = self.beta * membrane + current
        spike = fire(membrane - self.threshold, self.slope)
        return spike, membrane - spike.detach() * self.threshold


def previous_membrane(memory: Optional[List[Tensor]], layer: int, current: Tensor) -> Tensor:
    """The layer's membrane from the episode's previous step, or at rest (zero) when the episode starts."""
    return torch.zeros_like(current) if memory is None else memory[layer]


def spiking_conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3x3 conv without bias -> GroupNorm: the input current of a LIF layer, normalised so firing does
    not depend on the scale of psi."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
        group_norm(out_channels),
    )


class SNNUNet(Law):
    """conv -> LIF -> strided conv -> LIF at H/2 -> transposed conv -> concat skip -> conv -> LIF -> delta."""

    name = "SNN_UNET"
    grid_multiple = 2

    def __init__(self, d_state: int, hidden_channels: int) -> None:
        super().__init__(d_state, hidden_channels)
        psi_channels, h = 2 * d_state, hidden_channels
        self.encode = spiking_conv(psi_channels, h)
        self.down = spiking_conv(h, 2 * h, stride=2)
        self.up = upsample(2 * h, h)
        self.fuse = spiking_conv(2 * h, h)
        self.lif = LeakyIntegrateFire()
        self.head = output_head(h, psi_channels)

    def forward(self, x: Tensor, memory: Optional[List[Tensor]] = None) -> Tuple[Tensor, List[Tensor]]:
        """Return (delta, [encode, down, fuse membranes]); memory=None starts an episode at rest."""
        current = self.encode(x)
        encoded, encode_mem = self.lif(current, previous_membrane(memory, 0, current))
        current = self.down(encoded)
        deep, down_mem = self.lif(current, previous_membrane(memory, 1, current))
        current = self.fuse(torch.cat([self.up(deep), encoded], dim=1))
        fused, fuse_mem = self.lif(current, previous_membrane(memory, 2, current))
        return self.head(fused), [encode_mem, down_mem, fuse_mem]

    def channel_parts(self) -> Dict[str, Tuple[int, ...]]:
        """psi's halves in and out; the up-sampled channels, then the skip, into the fuse layer."""
        d, h = self.d_state, self.hidden_channels
        return {"encode.0.in": (d, d), "fuse.0.in": (h, h), "head.out": (d, d)}
