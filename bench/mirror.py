"""`mirror`: does mirroring to slow durable storage slow training? Training throughput with the remote mirror writing
to a throttled filesystem (10 MB/s, 200 ms latency per call: tests.faults) against no mirror, both saving
every episode and the mirror syncing every episode; pairs of runs are repeated and the median ratio is reported.
The throttle streams 1 MiB blocks, the size atheria.storage.atomic writes a mounted remote (Drive) in: a finer
throttle is a Python loop that wakes hundreds of times a second, and its contention for the GIL, not the mirror's,
would be measured (16 kB blocks cost about 7% on this 2-core machine; docs/benchmarks.md).

    python -m bench.mirror [--quick]

Result: episodes per second with the mirror over episodes per second without (1.0: the mirror costs nothing), from
each session's median episode (start to next start, every hook included; the first episode and the end of the
session, where the final mirror is waited for, excluded). The median episode is the steady pace: on a shared machine
another process's burst slows a few episodes of one arm and would swamp the mean, which is reported beside it. A
mirror that blocked training at its syncs (every episode here) would slow the median episode too. Pairs alternate
their order (no mirror first, then mirror first), which cancels a steady drift of the machine's speed; once a run's
episodes are done its remote turns fast, so its final mirror takes seconds and never overlaps the next run.
"""
from __future__ import annotations

import gc
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from bench.common import compose, device, median, note, parse_quick, pin_threads, result
from bench.session import train_session
from tests import faults

LATENCY_S, BANDWIDTH, BLOCK = 0.2, 10e6, 1 << 20
QUICK = {"steps": 10, "episodes": 12, "pairs": 7}
FULL = {"steps": 50, "episodes": 52, "pairs": 9}


class Unthrottle(Callback):
    """First of the end-of-training hooks: lifts the remote's latency and bandwidth limit before the final mirror."""

    def __init__(self, remote: faults.Faults) -> None:
        self.remote = remote

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.remote.latency, self.remote.bandwidth = 0.0, None


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Alternate runs without and with the throttled mirror; report the median throughput ratio."""
    preset = QUICK if parse_quick(__doc__.splitlines()[0], argv) else FULL
    threads = pin_threads()
    note(f"preset=quick model (UNET 16ch D4, grid 32), {preset['steps']} steps, {preset['episodes']} episodes per "
         f"run, save and sync every episode, remote at {BANDWIDTH / 1e6:g} MB/s and {LATENCY_S * 1000:g} ms per "
         f"call, {preset['pairs']} pairs, {device()}, {threads} thread(s)")
    ratios, mean_ratios = [], []
    with tempfile.TemporaryDirectory(prefix="atheria-bench-mirror-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        for rep in range(preset["pairs"]):
            # run.eval_every=0: every save writes a ranked checkpoint too, the heaviest upload load per episode
            common = ("preset=quick", f"qca.steps={preset['steps']}", "run.max_hours=24", "run.save_every=1",
                      "run.sync_every=1", "run.eval_every=0", f"run.total_episodes={preset['episodes']}")
            remote = faults.faulty(f"bench-mirror-{rep}", str(work / f"remote{rep}"), latency=LATENCY_S,
                                   bandwidth=BANDWIDTH, chunk=BLOCK)
            runs = {"plain": compose(work / f"plain{rep}", *common),
                    "mirrored": compose(work / f"mirrored{rep}", *common, f"storage.remote={remote.url}")}
            episodes = {}
            for arm in (("plain", "mirrored") if rep % 2 == 0 else ("mirrored", "plain")):  # ABBA cancels drift
                gc.collect()
                first = Unthrottle(remote) if arm == "mirrored" else None
                episodes[arm] = train_session(runs[arm], work / "framework.log", first=first).intervals()
            a, b = median(episodes["plain"]), median(episodes["mirrored"])
            ratios.append(a / b)
            mean_ratios.append(statistics.mean(episodes["plain"]) / statistics.mean(episodes["mirrored"]))
            uploaded = sum(f.stat().st_size for f in (work / f"remote{rep}").rglob("*") if f.is_file()) / 1e6
            note(f"pair {rep + 1}: median episode without mirror {a * 1000:.1f} ms, with {b * 1000:.1f} ms, ratio "
                 f"{a / b:.3f} (of the means {mean_ratios[-1]:.3f}); {uploaded:.1f} MB on the remote at the end")
            for run in (f"plain{rep}", f"mirrored{rep}", f"remote{rep}"):
                shutil.rmtree(work / run, ignore_errors=True)
    result("mirror.throughput_ratio", median(ratios), "x")
    result("mirror.throughput_ratio_of_means", median(mean_ratios), "x")


if __name__ == "__main__":
    main()
