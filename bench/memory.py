"""`memory`: peak activation memory of one training episode against qca.steps (10, 50, 100) for full
backpropagation through time, per-step activation checkpointing (qca.checkpoint_steps) and truncated BPTT
(qca.bptt_window=10), on the quick preset's model (UNET 16ch D4, grid 32).

    python -m bench.memory [--quick]

Each configuration runs in a fresh child process (forked before any torch work, spawned on a GPU). On the CPU the
figure is the child's resident-set high-water mark (VmHWM, reset through /proc/self/clear_refs just before the
episode) minus its resident set then, with the model, its gradients and the initial state already built and the code
paths warmed up by a tiny episode (a shared library's pages count as resident memory when first touched); on a GPU,
torch.cuda.max_memory_allocated minus the memory allocated before the episode. The episode is the rollout, the loss
and the backward pass.
"""
from __future__ import annotations

import multiprocessing as mp
from typing import Optional, Sequence

from bench.common import device, note, parse_quick, pin_threads, result

STEPS = (10, 50, 100)
MODES = {"full": {}, "checkpoint": {"checkpoint_steps": True}, "tbptt10": {"bptt_window": 10}}
MB = 1024 * 1024


def _status_kb(field: str) -> int:
    """A memory field of /proc/self/status, in kB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} is not in /proc/self/status")


def episode_peak(mode: str, steps: int, grid: int) -> float:
    """Bytes of memory one training episode needs above the model and its initial state (run in a fresh child)."""
    import torch

    from atheria.models import build_law
    from atheria.qca import LossWeights, Physics, episode_losses, initial_state, rollout

    pin_threads()
    dev = device()
    torch.manual_seed(0)
    law = build_law("unet", 4, 16).to(dev)
    physics = Physics(steps=steps, **MODES[mode])
    warm = initial_state(42, 1, 1, 8, 4).to(dev)  # fault the code paths in: shared-library pages are resident memory
    episode_losses(warm, rollout(law, warm, Physics(steps=2, **MODES[mode])), LossWeights())["loss"].backward()
    law.zero_grad(set_to_none=False)
    psi0 = initial_state(42, 0, 1, grid, 4).to(dev)
    if dev == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _status_kb("VmRSS") * 1024
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the high-water mark to the current resident set
    episode_losses(psi0, rollout(law, psi0, physics), LossWeights())["loss"].backward()
    if dev == "cuda":
        torch.cuda.synchronize()
        return float(torch.cuda.max_memory_allocated() - base)
    return float(_status_kb("VmHWM") * 1024 - base)


def _child(mode: str, steps: int, grid: int, out: mp.Queue) -> None:
    out.put(episode_peak(mode, steps, grid))


def measure(mode: str, steps: int, grid: int) -> float:
    """episode_peak in a fresh child, so no allocator cache of an earlier configuration hides memory (forked on
    the CPU, where it is cheap; spawned on a GPU, since CUDA does not survive a fork)."""
    ctx = mp.get_context("spawn" if device() == "cuda" else "fork")
    out = ctx.Queue()
    child = ctx.Process(target=_child, args=(mode, steps, grid, out))
    child.start()
    peak = out.get(timeout=600)
    child.join()
    return peak


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Measure every (mode, steps) pair; report MB and checkpointing's share of full BPTT at 100 steps."""
    parse_quick(__doc__.splitlines()[0], argv)  # one variant: the quick preset's model is the subject on any device
    grid = 32
    note(f"UNET 16ch D4, grid {grid}, {device()}; activation memory of one training episode (MB):")
    peaks = {}
    for mode in MODES:
        for steps in STEPS:
            peaks[mode, steps] = measure(mode, steps, grid) / MB
        note(f"  {mode:10s} " + "  ".join(f"{steps} steps {peaks[mode, steps]:7.1f}" for steps in STEPS))
    for (mode, steps), mb in peaks.items():
        result(f"memory.{mode}.steps{steps}", mb, "MB")
    result("memory.checkpoint_over_full.steps100", peaks["checkpoint", 100] / peaks["full", 100], "fraction")


if __name__ == "__main__":
    main()
