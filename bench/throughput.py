"""`throughput`: cells x steps per second of the QCA step for each architecture at grids 32, 64 and 128, forward
only (no graph) and training (rollout, loss, backward, AdamW step), and torch.compile (qca.compile=true) against
eager. The reference guide plans with 50 M cells x steps/s on a T4.

    python -m bench.throughput [--quick]

Laws at the default size (d_state 4, hidden 16), batch 1; then training at grid 32 with batches of 1, 4 and 16
episodes played in one rollout (`qca.batch_size`; cells x steps counts every episode of the batch). Each figure is
the fastest of several repeated episodes after a warm-up one (the fastest is the least disturbed figure on a shared
machine). torch.compile is measured on the
quick preset's model (UNET, grid 32) in the quick variant and on every architecture at grid 64 in the full one; its
first compiled episode (the compilation) is reported on its own.
"""
from __future__ import annotations

import time
from typing import Callable, Optional, Sequence

import torch

from atheria.models import ARCHITECTURES, build_law
from atheria.qca import LossWeights, Physics, episode_losses, initial_state, rollout
from bench.common import device, note, parse_quick, pin_threads, result

GRIDS = (32, 64, 128)
BATCHES = (1, 4, 16)  # qca.batch_size, at grid 32
QUICK = {"steps": 5, "repeats": 5, "compiled": (("unet", 32),)}
FULL = {"steps": 20, "repeats": 5, "compiled": tuple((arch, 64) for arch in ARCHITECTURES)}


def episode_fn(arch: str, grid: int, steps: int, train: bool, compiled: bool, batch: int = 1,
               amp: Optional[torch.dtype] = None, dev: Optional[str] = None) -> Callable[[], None]:
    """One episode (of `batch` episodes) of the law at this grid on `dev` (default: the benchmarks' device): a
    no-graph rollout, or rollout + loss + backward + AdamW step; under autocast to `amp` when given (float16 with
    loss scaling)."""
    dev = dev or device()
    torch.manual_seed(0)
    law = build_law(arch, 4, 16).to(dev)
    psi0 = initial_state(0, 0, batch, grid, 4).to(dev)
    physics = Physics(steps=steps, compile=compiled)
    optimizer = torch.optim.AdamW(law.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(dev, enabled=amp == torch.float16)

    def sync() -> None:
        if dev == "cuda":
            torch.cuda.synchronize()

    def forward() -> None:
        with torch.no_grad():
            rollout(law, psi0, physics)
        sync()

    def training() -> None:
        optimizer.zero_grad()
        with torch.autocast(dev, dtype=amp or torch.float32, enabled=amp is not None):
            loss = episode_losses(psi0, rollout(law, psi0, physics), LossWeights())["loss"]
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        sync()

    return training if train else forward


def timed(fn: Callable[[], None]) -> float:
    """Seconds one call of fn takes."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def cells_steps_per_s(arch: str, grid: int, steps: int, repeats: int, train: bool, compiled: bool = False,
                      batch: int = 1, amp: Optional[torch.dtype] = None,
                      dev: Optional[str] = None) -> tuple[float, float]:
    """(M cells x steps per second of the fastest repeat, seconds of the first, warm-up episode)."""
    fn = episode_fn(arch, grid, steps, train, compiled, batch, amp, dev)
    first = timed(fn)
    best = min(timed(fn) for _ in range(repeats))
    return batch * grid * grid * steps / best / 1e6, first


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Measure every architecture x grid x mode eagerly, then compiled against eager where the variant says."""
    preset = QUICK if parse_quick(__doc__.splitlines()[0], argv) else FULL
    threads = pin_threads()
    steps, repeats = preset["steps"], preset["repeats"]
    note(f"device {device()}, {threads} thread(s); {steps} steps per episode, fastest of {repeats}; "
         "M cells x steps per second")
    for arch in ARCHITECTURES:
        for grid in GRIDS:
            fwd, _ = cells_steps_per_s(arch, grid, steps, repeats, train=False)
            trn, _ = cells_steps_per_s(arch, grid, steps, repeats, train=True)
            note(f"  {arch:9s} grid {grid:3d}: forward {fwd:7.3f}  training {trn:7.3f}")
            result(f"throughput.{arch}.g{grid}.forward", fwd, "Mcell_steps/s")
            result(f"throughput.{arch}.g{grid}.train", trn, "Mcell_steps/s")
    for arch in ARCHITECTURES:
        rates = [cells_steps_per_s(arch, 32, steps, repeats, train=True, batch=b)[0] for b in BATCHES]
        note(f"  {arch:9s} grid  32 training, batch " + ", ".join(f"{b}: {r:.3f}" for b, r in zip(BATCHES, rates)))
        for b, rate in zip(BATCHES, rates):
            result(f"throughput.{arch}.g32.train.b{b}", rate, "Mcell_steps/s")
    for arch, grid in preset["compiled"]:
        for mode, train in (("forward", False), ("train", True)):
            torch._dynamo.reset()
            eager, _ = cells_steps_per_s(arch, grid, steps, repeats, train)
            fast, compile_s = cells_steps_per_s(arch, grid, steps, repeats, train, compiled=True)
            note(f"  {arch} grid {grid} {mode}: eager {eager:.3f}, compiled {fast:.3f} "
                 f"(first compiled episode {compile_s:.1f} s)")
            result(f"throughput.{arch}.g{grid}.{mode}.compiled", fast, "Mcell_steps/s")
            result(f"throughput.{arch}.g{grid}.{mode}.compile_speedup", fast / eager, "x")
            result(f"throughput.{arch}.g{grid}.{mode}.compile_s", compile_s, "s")


if __name__ == "__main__":
    main()
