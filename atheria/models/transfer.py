"""Seed a law from another law's weights, also of another width or d_state: what `init_from` does to a law.

A tensor of the same shape is loaded whole. One whose shape differs is seeded: along each axis the overlapping
channels are copied, part by part where the law names the parts (psi's real and imaginary halves, a U-Net's skip
concatenation); weights from new input channels into copied output channels are zeroed; the rest (new channels)
keeps its fresh init. A law widened this way computes its source's delta exactly (GroupNorm's groups of 8 stay whole
when the source's widths are multiples of 8), and its new channels train from there.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from atheria.models.base import Law

Pairs = List[Tuple[slice, slice]]  # along one axis: (source slice, law slice) of each part's overlap


@dataclass(frozen=True)
class Transfer:
    """How a source's weights map onto a law: each of the law's tensors is loaded whole, seeded from the overlap of
    the source's, or left at init; `unused` are the source's tensors with no place in the law."""

    axes: Dict[str, List[Pairs]]
    loaded: List[str]
    seeded: List[str]
    left: List[str]
    unused: List[str]

    @property
    def transferred(self) -> int:
        """How many of the law's tensors get the source's weights, whole or in part."""
        return len(self.loaded) + len(self.seeded)

    def summary(self, shown: int = 3) -> str:
        """Counts, then the first few names left at init: '42 of 42 tensors: 1 loaded, 41 seeded ..., 0 left'."""
        total = self.transferred + len(self.left)
        line = (f"{self.transferred} of {total} tensors: {len(self.loaded)} loaded, {len(self.seeded)} seeded "
                f"(shapes differ: the overlapping channels copied, new ones at init), {len(self.left)} left at init")
        if self.left:
            more = len(self.left) - shown
            line += f" ({', '.join(self.left[:shown])}{f' ... and {more} more' if more > 0 else ''})"
        return line + (f"; {len(self.unused)} of the source's tensors unused" if self.unused else "")


def _roles(law: Law, name: str, ndim: int) -> Dict[int, str]:
    """Which axis of a tensor is its module's output channels and which its input ('out', 'in')."""
    if ndim == 1:
        return {0: "out"}
    module = law.get_submodule(name.rsplit(".", 1)[0]) if "." in name else law
    out = 1 if getattr(module, "transposed", False) else 0  # ConvTranspose weights are [in, out, ...]
    return {out: "out", 1 - out: "in"}


def _parts(parts: Dict[str, Tuple[int, ...]], key: str, size: int) -> Tuple[int, ...]:
    """The declared parts of an axis, or the axis as one part (also when the declaration does not fit its size)."""
    declared = parts.get(key, (size,))
    return declared if sum(declared) == size else (size,)


def _pairs(source: Tuple[int, ...], target: Tuple[int, ...]) -> Pairs:
    """Part by part, the overlapping slices: the first min(a, b) channels of each part."""
    pairs, a, b = [], 0, 0
    for n, m in zip(source, target):
        k = min(n, m)
        pairs.append((slice(a, a + k), slice(b, b + k)))
        a, b = a + n, b + m
    return pairs


def plan(law: Law, state: Dict[str, Tensor], source_parts: Dict[str, Tuple[int, ...]]) -> Transfer:
    """Map a source state_dict (names as in the law's) onto `law` by shapes only (the law may be on the meta device);
    `source_parts`: the source law's channel_parts()."""
    own, parts = law.state_dict(), law.channel_parts()
    axes: Dict[str, List[Pairs]] = {}
    loaded, seeded, left = [], [], []
    for name, tensor in own.items():
        theirs = state.get(name)
        if theirs is None or theirs.dim() != tensor.dim():
            left.append(name)
            continue
        module = name.rsplit(".", 1)[0]
        roles = _roles(law, name, tensor.dim())
        split = [(_parts(source_parts, f"{module}.{roles[i]}", theirs.shape[i]) if i in roles else (theirs.shape[i],),
                  _parts(parts, f"{module}.{roles[i]}", tensor.shape[i]) if i in roles else (tensor.shape[i],))
                 for i in range(tensor.dim())]
        axes[name] = [_pairs(s, t) for s, t in split]
        (loaded if all(s == t for s, t in split) else seeded).append(name)
    return Transfer(axes, loaded, seeded, left, [name for name in state if name not in own])


@torch.no_grad()
def seed(law: Law, state: Dict[str, Tensor], transfer: Transfer) -> None:
    """Copy the source's weights into `law` in place as `transfer` planned (see the module docstring)."""
    own = law.state_dict(keep_vars=True)
    for name, axes in transfer.axes.items():
        target, source = own[name].data, state[name].to(own[name].dtype)
        for combo in itertools.product(*axes):
            target[tuple(t for _, t in combo)] = source[tuple(s for s, _ in combo)]
        dims = {role: i for i, role in _roles(law, name, target.dim()).items()}
        if name in transfer.seeded and "in" in dims:
            _zero_new_inputs(target, dims["out"], axes[dims["out"]], dims["in"], axes[dims["in"]])


def _zero_new_inputs(weight: Tensor, out: int, out_pairs: Pairs, inp: int, in_pairs: Pairs) -> None:
    """Zero the weights from input channels the source did not have into output channels copied from it, so those
    outputs stay what the source computed."""
    copied = torch.zeros(weight.shape[out], dtype=torch.bool)
    new = torch.ones(weight.shape[inp], dtype=torch.bool)
    for _, t in out_pairs:
        copied[t] = True
    for _, t in in_pairs:
        new[t] = False
    along_out, along_in = [1] * weight.dim(), [1] * weight.dim()
    along_out[out], along_in[inp] = -1, -1
    weight.masked_fill_(copied.view(along_out) & new.view(along_in), 0.0)
