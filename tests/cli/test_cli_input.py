"""Mistakes on the `atheria` command line are one line and exit 2, answered before torch is imported and with
nothing written; `atheria estimate` shows progress, keeps to --max-seconds and stops at once on SIGINT/SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import REPO

# `python -m atheria ARGS`, reporting on stderr when torch was imported on the way to the answer.
PROBE = ("import runpy, sys\nsys.argv = ['atheria', *sys.argv[1:]]\ntry:\n"
         "    runpy.run_module('atheria', run_name='__main__', alter_sys=True)\nfinally:\n"
         "    if 'torch' in sys.modules:\n        print('torch was imported', file=sys.stderr)\n")


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("argv,message", [
    (["export", "missing.ckpt"], "missing.ckpt is not a checkpoint file (for example outputs/checkpoints/"),
    (["export", "run.ckpt", "--bogus"], "atheria export: unrecognized arguments: --bogus (see atheria export --help)"),
    (["export", "run.ckpt", "--out", "folder"], "--out folder is a directory; give the .pt file to write"),
    (["render", "run.ckpt", "--grid", "x"], "atheria render: argument --grid: invalid int value: 'x' (see atheria "),
    (["render", "run.ckpt", "--steps", "0"], "--steps 0 must be a positive integer"),
    (["render", "run.ckpt", "--out", "run.ckpt"], "--out run.ckpt is a file; give the directory"),
    (["generate", "missing.ckpt"], "missing.ckpt is not a checkpoint file"),
    (["generate", "run.ckpt", "--top-p", "1.5"], "--top-p 1.5 must be in (0, 1]"),
    (["estimate", "model=mlp", "--max-seconds", "0"], "--max-seconds 0 must be a positive number of seconds"),
])
def test_bad_arguments_are_one_line_before_torch_is_imported_and_write_nothing(tmp_path, argv, message):
    (tmp_path / "run.ckpt").write_bytes(b"never read: the arguments are refused first")
    (tmp_path / "folder").mkdir()
    before = files_under(tmp_path)
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=tmp_path, text=True, capture_output=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr
    assert files_under(tmp_path) == before


# One episode of 100000 UNET steps: it never ends within a test, so only a cap or a signal stops the timing.
ENDLESS = ("model=unet", "qca.grid_size=8", "model.hidden_channels=32", "qca.steps=100000", "platform=local")


class Estimate:
    """`python -m atheria estimate ENDLESS ...` in a subprocess, its stdout collected line by line as it comes."""

    def __init__(self, root: Path, *options: str) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "atheria", "estimate", *ENDLESS, f"storage.local={root}",
                                      *options], cwd=root.parent, text=True, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()

    def wait_for(self, text: str, timeout: float = 180) -> float:
        """The time `text` first appeared in the output (after waiting for it)."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert time.monotonic() < deadline and self.proc.poll() is None, (self.lines, self.proc.stderr.read())
            time.sleep(0.1)
        return time.monotonic()

    def finish(self, timeout: float) -> tuple[int, str, str]:
        """Exit code, stdout and stderr once it exits; killed (and failed) when it takes longer than `timeout`."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"still running {timeout} s later:\n{''.join(self.lines)}")
        time.sleep(0.2)  # the reader thread takes the last lines
        return code, "".join(self.lines), self.proc.stderr.read()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_estimate_stops_within_seconds_of_a_signal_and_says_what_it_measured(tmp_path, signum):
    estimate = Estimate(tmp_path / "unused")
    estimate.wait_for("Timing 3 training episodes")
    time.sleep(3)  # inside the first episode, which would take hours
    sent = time.monotonic()
    estimate.proc.send_signal(signum)
    code, out, err = estimate.finish(timeout=15)
    assert code == 128 + signum, (out, err)
    assert time.monotonic() - sent < 10
    assert f"Interrupted by {signal.Signals(signum).name} after " in out and "Traceback" not in err, (out, err)
    assert not (tmp_path / "unused").exists()


@pytest.mark.slow
def test_estimate_keeps_to_max_seconds_and_extrapolates_the_first_episodes_steps(tmp_path):
    estimate = Estimate(tmp_path / "unused", "--max-seconds", "10")
    started = estimate.wait_for("for at most 10 s (--max-seconds")
    code, out, err = estimate.finish(timeout=40)
    assert code == 0 and "Traceback" not in err, (out, err)
    assert time.monotonic() - started < 10 + 15
    assert "Stopped at the 10 s cap (--max-seconds) after 10 s; estimating from " in out
    assert " of 100000 QCA steps of the first episode at " in out, out
    assert "extrapolated to 100000 steps x 3 (backward taken as 2x the forward)" in out
    assert "Extrapolated on " in out and "Predicted: 100 episodes (run.total_episodes) in " in out
    assert not (tmp_path / "unused").exists()
