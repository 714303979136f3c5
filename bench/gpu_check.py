"""`python -m bench --gpu-check [--cpu]`: everything a GPU session should confirm, in one command of under 8 minutes
on one GPU, installing nothing. On the CPU (`--cpu`, in the slow test suite) the same steps run on small sizes, so
that the check cannot rot while no GPU is at hand.

1. the device;
2. training throughput per architecture at the quick preset's grid, M cells x steps per second: float32 with one
   episode per step and with a batch of episodes (`qca.batch_size`), then the batch under autocast (the dtype
   train.py's default precision picks for this device) and through torch.compile; the best against the earlier
   code's planning figure of 50 M on a T4;
3. the framework's overhead at the quick preset on this device (bench/overhead.py's alternating measurement);
4. a `train.py` run with mixed precision that stops itself on its session budget, then the same command resuming
   it in a new session;
5. the GPU figures the resource monitor logged during that run (NVML utilisation and memory; NaN on the CPU);
6. what held-out evaluations cost the training loop at their save (inline) and on a background thread, which
   training picks on a GPU (bench/evaluation.py).
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

PLANNING_M = 50.0  # M cells x steps per second the earlier code planned with on a T4
GPU = {"grid": 32, "batch": 16, "steps": 20, "repeats": 3, "variant": "", "episodes": 27, "ov_repeats": 2,
       "hours": 0.0125, "train": ("preset=quick", "run.total_episodes=100000", "run.monitor_every=10")}
CPU = {"grid": 16, "batch": 2, "steps": 5, "repeats": 2, "variant": "tiny", "episodes": 12, "ov_repeats": 1,
       "hours": 0.01, "train": ("preset=quick", "model=mlp", "qca.grid_size=16", "qca.steps=10",
                                "run.total_episodes=100000", "run.monitor_every=10", "trainer.precision=bf16-mixed")}


def amp_dtype(dev: str) -> torch.dtype:
    """The autocast dtype train.py's default precision uses here (bfloat16 on the CPU, where it checks the path)."""
    from atheria.config.resolvers import auto_precision

    return torch.float16 if dev == "cuda" and auto_precision() == "16-mixed" else torch.bfloat16


def throughput(plan: dict, dev: str) -> None:
    b = plan["batch"]
    note(f"2. training throughput, grid {plan['grid']}, {plan['steps']} steps, fastest of {plan['repeats']} after a "
         f"warm-up (compiled: the warm-up is the compilation); M cells x steps per second, every episode of a batch "
         f"counted")
    best = 0.0
    for arch in ARCHITECTURES:
        rates = {}
        for mode, batch in (("fp32", 1), ("fp32", b), ("amp", b), ("compiled", b)):
            torch._dynamo.reset()
            rates[f"{mode}.b{batch}"], first = cells_steps_per_s(
                arch, plan["grid"], plan["steps"], plan["repeats"], train=True, compiled=mode == "compiled",
                batch=batch, amp=amp_dtype(dev) if mode == "amp" else None, dev=dev)
            if mode == "compiled":
                note(f"   {arch}: first compiled episode {first:.1f} s")
        note(f"   {arch:9s} fp32 batch 1 {rates['fp32.b1']:8.3f}, batch {b} {rates[f'fp32.b{b}']:8.3f}; batch {b} "
             f"amp ({str(amp_dtype(dev)).removeprefix('torch.')}) {rates[f'amp.b{b}']:8.3f}, compiled "
             f"{rates[f'compiled.b{b}']:8.3f}")
        for mode, rate in rates.items():
            result(f"gpu_check.throughput.{arch}.{mode}", rate, "Mcell_steps/s")
        best = max(best, *rates.values())
    note(f"   best {best:.3f} against the planning figure of {PLANNING_M:.0f} M on a T4: {best / PLANNING_M:.3f}x")
    result("gpu_check.throughput.best_over_planning", best / PLANNING_M, "x")


def framework_overhead(plan: dict, work: Path) -> None:
    variant = plan["variant"]
    note(f"3. the framework's overhead, {variant or 'quick'} variant ({' '.join(overhead.VARIANTS[variant])}), "
         f"{plan['episodes']} episodes x {plan['ov_repeats']}")
    ratios = overhead.ratios_of(variant, plan["episodes"], plan["ov_repeats"], work)
    result("gpu_check.overhead.time_ratio", median(ratios), "x")


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
    with tempfile.TemporaryDirectory(prefix="atheria-gpu-check-") as tmp:
        throughput(plan, dev)
        framework_overhead(plan, Path(tmp))
        monitored(budget_stop_and_resume(plan, Path(tmp)))
        evaluation_cost(plan)
    note(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
