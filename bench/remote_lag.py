"""`remote_lag`: how far the remote's newest verified checkpoint trails local when uploads are slower than saves.
One training session saving and syncing every episode to a throttled remote (tests.faults) on which one
mirror job (a new cadence checkpoint, last.ckpt, the logs) takes several episodes, the case of Colab's Drive.

    python -m bench.remote_lag [--quick]

At the start of every episode, lag = the local step - the step of the remote's latest.json (read from the backing
directory, so the probe does not pay the remote's latency). Results: the lag's median and maximum over the session,
U = the median mirror job in episodes (job seconds over the median episode), and the lag sampled just after each
publish. With one upload stream, the pointer can fall at most U + sync_every + 1 behind at a publish, and
2U + sync_every + 1 just before one (the job in flight plus the one published before it); the earlier code's
pointer stopped moving here (it stayed at episode 1 while local reached 300).
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

import atheria.session.kit as kit_module
import atheria.storage.mirror as mirror_module
from bench.common import compose, median, note, parse_quick, pin_threads, result
from bench.session import train_session
from tests import faults

NAME = "UNET_16ch_D4"
QUICK = {"steps": 10, "episodes": 120, "bandwidth": 16e6}
FULL = {"steps": 20, "episodes": 400, "bandwidth": 16e6}


class LagProbe(Callback):
    """Reads the remote's published step at the start of every episode."""

    def __init__(self, manifest: Path) -> None:
        self.manifest = manifest
        self.samples: list[tuple[int, int]] = []  # (local step, remote step)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        try:
            remote = int(json.loads(self.manifest.read_text())["step"])
        except (FileNotFoundError, ValueError, KeyError):
            remote = 0
        self.samples.append((trainer.global_step, remote))


class TimedMirror(mirror_module.Mirror):
    """The real Mirror, keeping each completed job's duration."""

    made: list["TimedMirror"] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.jobs: list[float] = []
        TimedMirror.made.append(self)

    def _run(self, job: Any) -> bool:
        done = super()._run(job)
        if done and self.last_job_seconds is not None:
            self.jobs.append(self.last_job_seconds)
        return done


def main(argv: Optional[Sequence[str]] = None) -> None:
    """One throttled session; report the remote pointer's lag in episodes."""
    preset = QUICK if parse_quick(__doc__.splitlines()[0], argv) else FULL
    threads = pin_threads()
    kit_module.Mirror = TimedMirror  # type: ignore[misc]  # the session kit builds the mirror through this name
    with tempfile.TemporaryDirectory(prefix="atheria-bench-lag-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        remote = faults.faulty("bench-lag", str(work / "remote"), bandwidth=preset["bandwidth"], chunk=1 << 20)
        # run.eval_every=0 and the reference objective, whose loss falls steadily at first: nearly every save writes
        # a new best-N checkpoint too, the heaviest upload load per episode (as in the earlier recorded runs)
        cfg = compose(work / "local", "preset=quick", f"qca.steps={preset['steps']}", "run.max_hours=24",
                      "run.save_every=1", "run.sync_every=1", "run.eval_every=0", "qca.objective=reference",
                      f"run.total_episodes={preset['episodes']}", f"storage.remote={remote.url}")
        probe = LagProbe(work / "remote" / "checkpoints" / NAME / "latest.json")
        note(f"preset=quick model (UNET 16ch D4, grid 32), {preset['steps']} steps, {preset['episodes']} episodes, "
             f"save and sync every episode, remote at {preset['bandwidth'] / 1e6:g} MB/s, {threads} thread(s)")
        timer = train_session(cfg, work / "framework.log", first=probe)
    (mirror,) = TimedMirror.made
    samples = probe.samples[1:]
    lags = [local - remote for local, remote in samples]
    at_publish = [lag for (lag, (_, r0), (_, r1)) in zip(lags[1:], samples, samples[1:]) if r1 > r0]
    episode = median(timer.intervals())
    upload, longest = median(mirror.jobs) / episode, max(mirror.jobs) / episode
    note(f"median episode {episode * 1000:.0f} ms, mirror jobs {median(mirror.jobs) * 1000:.0f} ms median "
         f"({upload:.1f} episodes), {max(mirror.jobs) * 1000:.0f} ms longest ({longest:.1f} episodes), "
         f"{len(mirror.jobs)} jobs, {len(at_publish)} publishes seen")
    note(f"bounds (sync_every 1): at a publish U + 2 = {longest + 2:.1f}, anywhere 2U + 2 = {2 * longest + 2:.1f}, "
         "with U the longest job in episodes")
    note(f"lags by episode: {lags}")
    result("mirror.remote_lag_episodes.median", median(lags), "episodes")
    result("mirror.remote_lag_episodes.max", max(lags), "episodes")
    result("mirror.remote_lag_episodes.max_at_publish", max(at_publish) if at_publish else float("nan"), "episodes")
    result("mirror.episodes_per_upload", upload, "episodes")
    result("mirror.episodes_per_upload.max", longest, "episodes")


if __name__ == "__main__":
    main()
