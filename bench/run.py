"""`python -m bench [--quick] [NAME ...]` (or `python bench/run.py`): run the benchmarks, each in its own process,
pass their explanations through, and end with every `RESULT <name> <value> <unit>` line.

    python -m bench --quick              # all eight, the short variants for a 2-core CPU (about 10 minutes)
    python -m bench                      # all eight, the full variants (for a GPU; long on a CPU)
    python -m bench --quick memory budget
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

BENCHMARKS = ("overhead", "mirror", "remote_lag", "budget", "memory", "throughput", "startup", "science")


def run_one(name: str, quick: bool) -> tuple[int, list[str]]:
    """Run `python -m bench.NAME` in a fresh process, echoing its lines; (exit code, its RESULT lines)."""
    cmd = [sys.executable, "-m", f"bench.{name}", *(["--quick"] if quick else [])]
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
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; accepted: {', '.join(BENCHMARKS)}")
    print(f"machine: {machine()}", flush=True)
    print(f"command: python -m bench{' --quick' if args.quick else ''} {' '.join(args.names)}".rstrip(), flush=True)
    results, failed = [], []
    for name in args.names or BENCHMARKS:
        t0 = time.perf_counter()
        code, lines = run_one(name, args.quick)
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
