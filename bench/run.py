"""`python -m bench [--quick] [NAME ...]` (or `python bench/run.py`): run the benchmarks, each in its own process,
pass their explanations through, and end with every `RESULT <name> <value> <unit>` line.

    python -m bench --quick              # all eight, the short variants for a 2-core CPU (about 10 minutes)
    python -m bench                      # all eight, the full variants (for a GPU; long on a CPU)
    python -m bench --quick memory budget
    python -m bench --gpu-check          # what a GPU session should confirm, in under 8 minutes (bench/gpu_check.py)
    python -m bench --gpu-check --cpu    # the same steps on the CPU, on small sizes
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, machine  # noqa: E402

BENCHMARKS = ("overhead", "mirror", "remote_lag", "budget", "memory", "throughput", "startup", "science",
              "evaluation")


def run_one(name: str, *args: str) -> tuple[int, list[str]]:
    """Run `python -m bench.NAME ARGS` in a fresh process, echoing its lines; (exit code, its RESULT lines)."""
    cmd = [sys.executable, "-m", f"bench.{name}", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    results = []
    with subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("RESULT "):
                results.append(line.rstrip("\n"))
            else:
                print(f"[{name}] {line}", end="", flush=True)
    return proc.returncode, results


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the chosen benchmarks in order; print the machine, each one's duration, then all RESULT lines."""
    parser = argparse.ArgumentParser(prog="python -m bench", description="Atheria's benchmarks (docs/benchmarks.md).")
    parser.add_argument("--quick", action="store_true", help="the short variants, for a 2-core CPU")
    parser.add_argument("--gpu-check", action="store_true", help="run the GPU check (bench/gpu_check.py) instead")
    parser.add_argument("--cpu", action="store_true", help="with --gpu-check: run its steps on the CPU")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; accepted: {', '.join(BENCHMARKS)}")
    if args.cpu and not args.gpu_check:
        parser.error("--cpu goes with --gpu-check only")
    if args.gpu_check:
        if args.quick or args.names:
            parser.error("--gpu-check takes no benchmark names and no --quick; accepted: --gpu-check [--cpu]")
        code, lines = run_one("gpu_check", *(["--cpu"] if args.cpu else []))
        print("\n".join(lines), flush=True)
        return code
    print(f"machine: {machine()}", flush=True)
    print(f"command: python -m bench{' --quick' if args.quick else ''} {' '.join(args.names)}".rstrip(), flush=True)
    results, failed = [], []
    for name in args.names or BENCHMARKS:
        t0 = time.perf_counter()
        code, lines = run_one(name, *(["--quick"] if args.quick else []))
        print(f"[{name}] {'done' if code == 0 else f'FAILED (exit code {code})'} in {time.perf_counter() - t0:.0f} s",
              flush=True)
        results += lines
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", flush=True)
    print("\n".join(results), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
