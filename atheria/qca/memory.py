"""The memory one training episode needs, and what the device it runs on has free: a run that cannot fit is refused
before it starts instead of failing on its first allocation."""
from __future__ import annotations

import os

import torch
from torch import nn

from atheria.qca.engine import Physics, advance, energy, real_layout
from atheria.qca.state import initial_state

PROBE_GRID = 16  # a multiple of every law's grid_multiple, small enough to probe in milliseconds
GB = 1024 ** 3
# Cells per batched rollout at which a T4's training step stops being mostly kernel launches: an estimate scaled from
# the H200 measurements in docs/benchmarks.md ("gpu-check"), README "On a fast GPU".
FILL_CELLS = 65_536


def _saved_bytes(law: nn.Module, grid: int, d_state: int, gamma: float, normalize: str) -> tuple[int, int]:
    """(bytes autograd saves for one QCA step, bytes of the state carried between steps), one episode at `grid`:
    the second of two steps (a stateful law's memory is then in use), parameters not counted."""
    params = {p.untyped_storage().data_ptr() for p in law.parameters()}
    psi = initial_state(0, 0, 1, grid, d_state)
    e0 = energy(psi)
    z, memory = advance(law, real_layout(psi), None, e0, gamma, normalize)
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        advance(law, z.detach(), [m.detach() for m in memory], e0, gamma, normalize)
    carried = z.nbytes + sum(m.nbytes for m in memory)
    return sum(saved.values()), carried


def episode_bytes(law: nn.Module, physics: Physics, grid: int, batch: int) -> int:
    """Bytes one training episode of `law` holds at its peak (fp32): the steps it backpropagates through, each
    holding what autograd saves for it (measured on a PROBE_GRID grid, scaled by cells; only the carried state under
    qca.checkpoint_steps), one more step's worth for the backward pass, and the weights, gradients and AdamW moments.
    Calibrated on the CPU (no GPU to hand) against the live-memory peak of real episodes (bench/memory.py's method with
    glibc's mmap threshold fixed): the four laws at grids 32-128, 10-50 steps, full, checkpointed and truncated BPTT
    peak at 0.8-1.8x this figure, and the allocator's slack adds up to 2x more, so the figure errs low."""
    with torch.enable_grad():
        step, carried = _saved_bytes(law, PROBE_GRID, law.d_state, physics.gamma, physics.normalize)
    scale = batch * grid * grid / PROBE_GRID ** 2
    graph_steps = min(physics.bptt_window, physics.steps) if physics.bptt_window else physics.steps
    held = graph_steps * carried + step if physics.checkpoint_steps else graph_steps * step
    weights = sum(p.numel() * p.element_size() for p in law.parameters())
    return int(scale * (held + step)) + 4 * weights


def free_bytes(accelerator: str) -> tuple[str, int]:
    """The device a run trains on and its free memory: the GPU's free memory where Lightning's `accelerator` picks
    CUDA (this rank's GPU under DDP), else the RAM available to new processes."""
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        index = int(os.environ.get("LOCAL_RANK", 0))
        free, _ = torch.cuda.mem_get_info(index)
        return torch.cuda.get_device_name(index), free
    import psutil

    return "CPU", psutil.virtual_memory().available


def fill_batch(law: nn.Module, physics: Physics, grid: int, device_bytes: int) -> int:
    """Episodes per batched rollout that fill a GPU of `device_bytes`: FILL_CELLS cells, halved while the episode's
    estimated memory passes a quarter of the device's (the estimate errs low by up to 2x, the allocator adds up to 2x
    more); at least 1."""
    batch = max(1, FILL_CELLS // (grid * grid))
    while batch > 1 and episode_bytes(law, physics, grid, batch) > device_bytes / 4:
        batch //= 2
    return batch
