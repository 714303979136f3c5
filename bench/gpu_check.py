"""`python -m bench --gpu-check [--cpu]`: everything a GPU session should confirm, in one command of under 8 minutes
on one GPU, installing nothing. On the CPU (`--cpu`, in the slow test suite) the same steps run on small sizes, so
that the check cannot rot while no GPU is at hand.

1. the device;
2. training throughput per architecture, M cells x steps per second, at each grid and number of episodes played in
   one rollout (`qca.batch_size`): float32, and under autocast (the dtype train.py's default precision picks for
   this device); where a GPU runs out of memory the figure is NaN; the best against the earlier code's planning
   figure of 50 M on a T4;
3. the framework's overhead at the quick preset on this device (bench/overhead.py's alternating measurement);
4. a `train.py` run with mixed precision that stops itself on its session budget, then the same command resuming
   it in a new session;
5. the GPU figures the resource monitor logged during that run (NVML utilisation and memory; NaN on the CPU);
6. what held-out evaluations cost the training loop at their save (inline) and on a background thread, which
   training picks on a GPU (bench/evaluation.py);
7. mixed precision's correctness on this device: one episode's loss and gradient under autocast to float16 and to
   bfloat16 against float32, for each architecture, with the tolerances tests/qca/test_precision.py holds the CPU to;
8. torch.compile's throughput at the quick preset's grid and the largest batch, and its compilation time: last,
   since compiling takes the longest and the least predictable time; an architecture whose turn comes after
   `deadline_s` is skipped (NaN), so the other figures are never lost to it.
"""
from __future__ import annotations

import argparse
import csv
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

import torch

from atheria.models import ARCHITECTURES
from bench import evaluation, overhead
from bench.common import REPO, machine, median, note, pin_threads, result
from bench.throughput import cells_steps_per_s
from tests.qca.test_precision import LOSS_TOLERANCE, MIN_COSINE, episode, law_at

PLANNING_M = 50.0  # M cells x steps per second the earlier code planned with on a T4
GPU = {"grids": (32, 64, 128), "batches": (1, 4, 16, 64), "steps": 20, "repeats": 3, "variants": ("", "tiny"),
       "episodes": 52, "ov_repeats": 2, "hours": 0.0125, "deadline_s": 420,
       "train": ("preset=quick", "run.total_episodes=100000", "run.monitor_every=10")}
CPU = {"grids": (16,), "batches": (1, 2), "steps": 5, "repeats": 2, "variants": ("tiny",), "episodes": 12,
       "ov_repeats": 1, "hours": 0.01, "deadline_s": 1200,
       "train": ("preset=quick", "model=mlp", "qca.grid_size=16", "qca.steps=10", "run.total_episodes=100000",
                 "run.monitor_every=10", "trainer.precision=bf16-mixed")}


def amp_dtype(dev: str) -> torch.dtype:
    """The autocast dtype train.py's default precision uses here (bfloat16 on the CPU, where it checks the path)."""
    from atheria.config.resolvers import auto_precision

    return torch.float16 if dev == "cuda" and auto_precision() == "16-mixed" else torch.bfloat16


def rate(arch: str, grid: int, batch: int, plan: dict, dev: str, mode: str) -> tuple[float, float]:
    """(M cells x steps per second, seconds of the first episode) of training in `mode` (fp32, amp, compiled); NaN
    where the device runs out of memory."""
    torch._dynamo.reset()
    try:
        return cells_steps_per_s(arch, grid, plan["steps"], plan["repeats"], train=True, compiled=mode == "compiled",
                                 batch=batch, amp=amp_dtype(dev) if mode == "amp" else None, dev=dev)
    except torch.OutOfMemoryError:
        torch.cuda.empty_cache()
        return math.nan, math.nan


def throughput(plan: dict, dev: str) -> None:
    amp = str(amp_dtype(dev)).removeprefix("torch.")
    note(f"2. training throughput, {plan['steps']} steps, fastest of {plan['repeats']} after a warm-up; M cells x "
         f"steps per second, every episode of a batch counted; float32 / autocast to {amp}")
    best = 0.0
    for arch in ARCHITECTURES:
        for grid in plan["grids"]:
            line = []
            for batch in plan["batches"]:
                pair = [rate(arch, grid, batch, plan, dev, mode)[0] for mode in ("fp32", "amp")]
                for mode, value in zip(("fp32", "amp"), pair):
                    result(f"gpu_check.throughput.{arch}.g{grid}.b{batch}.{mode}", value, "Mcell_steps/s")
                best = max(best, *(v for v in pair if not math.isnan(v)))
                line.append(f"b{batch} {pair[0]:.3g}/{pair[1]:.3g}")
            note(f"   {arch:9s} grid {grid:3d}: " + "; ".join(line))
    note(f"   best {best:.3f} against the planning figure of {PLANNING_M:.0f} M on a T4: {best / PLANNING_M:.3f}x")
    result("gpu_check.throughput.best_over_planning", best / PLANNING_M, "x")


def framework_overhead(plan: dict, work: Path) -> None:
    for variant in plan["variants"]:
        note(f"3. the framework's overhead, {variant or 'quick'} variant ({' '.join(overhead.VARIANTS[variant])}), "
             f"{plan['episodes']} episodes x {plan['ov_repeats']}")
        ratios = overhead.ratios_of(variant, plan["episodes"], plan["ov_repeats"], work)
        result(f"gpu_check.overhead.{variant or 'quick'}.time_ratio", median(ratios), "x")


def train(root: Path, plan: dict, log: Path) -> subprocess.CompletedProcess:
    """train.py as a user runs it, in a new session whose budget is `plan['hours']` from now."""
    cmd = [sys.executable, str(REPO / "train.py"), *plan["train"], "platform=local", f"storage.local={root}",
           f"run.max_hours={plan['hours']}", f"run.session_start={time.time()}"]
    proc = subprocess.run(cmd, cwd=root.parent, text=True, capture_output=True, timeout=600)
    log.write_text(proc.stdout + proc.stderr)
    return proc


def status_of(root: Path) -> dict:
    import json

    (path,) = root.glob("logs/*/status.json")
    return json.loads(path.read_text())


def budget_stop_and_resume(plan: dict, work: Path) -> Path:
    """Two sessions of the same command; returns the run's metrics.csv."""
    root = work / "run"
    note(f"4. train.py {' '.join(plan['train'])}, run.max_hours={plan['hours']}: stop on the budget, then resume")
    first = train(root, plan, work / "first.log")
    stopped = status_of(root)
    note(f"   first session: exit {first.returncode}, {stopped['state']} at episode {stopped['episode']}")
    second = train(root, plan, work / "second.log")
    resumed = status_of(root)
    says = f"Resuming from episode {stopped['episode']}" in second.stdout
    note(f"   second session: exit {second.returncode}, {resumed['state']} at episode {resumed['episode']}, "
         f"{'resumed where the first stopped' if says else 'did NOT say it resumed'}")
    ok = (first.returncode == second.returncode == 0 and stopped["state"] == resumed["state"] == "stopped-budget"
          and says and resumed["episode"] > stopped["episode"] > 0)
    if not ok:
        raise SystemExit(f"the budget stop and resume failed; the sessions' output: {work}/first.log, second.log\n"
                         + (first.stdout + first.stderr)[-2000:] + (second.stdout + second.stderr)[-2000:])
    result("gpu_check.train.first_session_episodes", stopped["episode"], "episodes")
    result("gpu_check.train.second_session_episodes", resumed["episode"] - stopped["episode"], "episodes")
    (metrics,) = root.glob("logs/*/metrics.csv")
    return metrics


def monitored(metrics: Path) -> None:
    note("5. what the resource monitor logged during those sessions")
    with open(metrics, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("resources/gpu_util")]

    def largest(key: str) -> float:
        values = [float(r[key]) for r in rows if r.get(key) and not math.isnan(float(r[key]))]
        return max(values) if values else math.nan

    util, mem, total = (largest(f"resources/{k}") for k in ("gpu_util", "gpu_mem_used_gb", "gpu_mem_total_gb"))
    note(f"   {len(rows)} readings; GPU utilisation up to {util:.0f}%, memory up to {mem:.2f} of {total:.2f} GB"
         if rows and not math.isnan(util) else f"   {len(rows)} readings; no GPU figures (NVML: no GPU here)")
    if not rows:
        raise SystemExit("the resource monitor logged nothing")
    result("gpu_check.nvml.gpu_util_max", util, "%")
    result("gpu_check.nvml.gpu_mem_used_gb_max", mem, "GB")


def evaluation_cost(plan: dict) -> None:
    timed = {**(evaluation.FULL if plan is GPU else evaluation.QUICK), "repeats": 1}
    note(f"6. held-out evaluations: {timed['episodes']} episodes, one every {timed['every']}, inline and in the "
         "background, against none")
    for mode, ratio in evaluation.ratios(timed).items():
        result(f"gpu_check.evaluation.{mode}.time_ratio", ratio, "x")


def precision(plan: dict, dev: str) -> None:
    from atheria.qca import Physics, initial_state

    grid, batch = plan["grids"][0], plan["batches"][1]
    note(f"7. mixed precision, grid {grid}, batch {batch}, {plan['steps']} steps, each law at its initial weights and "
         f"with every weight drawn with std 0.1 (far from the identity, as tests/qca/test_precision.py does): |loss - "
         f"float32's| (tolerance {LOSS_TOLERANCE}) and the gradient's cosine with float32's (at least {MIN_COSINE})")
    for arch in ARCHITECTURES:
        for weights in ("initial", "far"):
            law = law_at(arch, weights, dev)
            psi0, physics = initial_state(0, 0, batch, grid, 4).to(dev), Physics(steps=plan["steps"])
            _, full, full_grad = episode(law, psi0, physics)
            line = []
            for name, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
                _, mixed, grad = episode(law, psi0, physics, dtype)
                diff = abs(mixed["loss"].item() - full["loss"].item())
                cosine = torch.nn.functional.cosine_similarity(grad, full_grad, dim=0).item()
                result(f"gpu_check.precision.{arch}.{weights}.{name}.loss_diff", diff, "abs")
                result(f"gpu_check.precision.{arch}.{weights}.{name}.grad_cosine", cosine, "cos")
                ok = diff <= LOSS_TOLERANCE and cosine >= MIN_COSINE
                line.append(f"{name} {diff:.2g} / {cosine:.4f}{'' if ok else ' OUTSIDE'}")
            note(f"   {arch:9s} {weights:7s} " + "; ".join(line))


def compiled(plan: dict, dev: str, t0: float) -> None:
    grid, batch = plan["grids"][0], plan["batches"][-1]
    note(f"8. torch.compile, grid {grid}, batch {batch}: throughput and the first (compiling) episode")
    for arch in ARCHITECTURES:
        if time.perf_counter() - t0 > plan["deadline_s"]:
            note(f"   {arch}: skipped, past the check's {plan['deadline_s']} s")
            value, first = math.nan, math.nan
        else:
            value, first = rate(arch, grid, batch, plan, dev, "compiled")
            note(f"   {arch:9s} {value:8.3f} M cells x steps/s; first compiled episode {first:.1f} s")
        result(f"gpu_check.throughput.{arch}.g{grid}.b{batch}.compiled", value, "Mcell_steps/s")
        result(f"gpu_check.compile.{arch}.first_episode_s", first, "s")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="run the check on the CPU, on small sizes")
    args = parser.parse_args(argv)
    if not args.cpu and not torch.cuda.is_available():
        print("error: no GPU here (torch.cuda.is_available() is False); accepted: a GPU runtime, or --cpu to run "
              "the check's steps on the CPU", file=sys.stderr)
        return 2
    dev, plan = ("cpu", CPU) if args.cpu else ("cuda", GPU)
    t0 = time.perf_counter()
    note(f"1. {machine()}; checking on {dev}, {pin_threads()} torch thread(s)")
    failed = []
    with tempfile.TemporaryDirectory(prefix="atheria-gpu-check-") as tmp:
        # A step that fails is reported and the next one runs: a GPU session's minutes buy every figure they can.
        for name, step in (("throughput", lambda: throughput(plan, dev)),
                           ("overhead", lambda: framework_overhead(plan, Path(tmp))),
                           ("train", lambda: monitored(budget_stop_and_resume(plan, Path(tmp)))),
                           ("evaluation", lambda: evaluation_cost(plan)),
                           ("precision", lambda: precision(plan, dev)),
                           ("compiled", lambda: compiled(plan, dev, t0))):
            try:
                step()
            except (Exception, SystemExit) as e:
                failed.append(name)
                note(f"   step {name} FAILED: {type(e).__name__}: {str(e)[-3000:]}")
    note(f"done in {time.perf_counter() - t0:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
