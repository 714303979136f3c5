"""`evaluation`: what held-out evaluations cost the training loop, run at their save on the training thread (inline)
and on a background thread, each over the same session without evaluations, alternating runs, the median reported.
A session's loop time is the sum of its episodes' intervals (every hook included; the first and last episodes and
the trivial baselines' fit at the start left out). On the device this runs on, training picks background on an
accelerator, inline on the CPU (atheria/callbacks/evaluation.py).

    python -m bench.evaluation [--quick]

Full: the quick preset (grid 32), 60 episodes, an evaluation of 4 held-out episodes every 10, 3 repetitions. Quick:
the test's tiny run (grid 8), 40 episodes, an evaluation every 5, 1 repetition.
"""
from __future__ import annotations

import gc
import shutil
import tempfile
from functools import partialmethod
from pathlib import Path
from typing import Optional, Sequence

from atheria.callbacks.evaluation import HeldOutEvaluation
from bench.common import median, note, parse_quick, result
from bench.session import train_session
from tests.helpers import TINY, compose

FULL = {"base": ("preset=quick", "platform=local"), "episodes": 60, "every": 10, "repeats": 3}
QUICK = {"base": TINY, "episodes": 40, "every": 5, "repeats": 1}
MODES = {"none": None, "inline": False, "background": True}  # evaluations off, or HeldOutEvaluation(background=)


def loop_seconds(plan: dict, mode: str, root: Path) -> float:
    """The loop time of one session with evaluations run `mode`."""
    every = 0 if MODES[mode] is None else plan["every"]
    cfg = compose(root, "run.max_hours=24", f"run.eval_every={every}", "run.eval_episodes=4", "run.plot_every=0",
                  f"run.total_episodes={plan['episodes']}", "trainer.precision=32-true", base=plan["base"])
    original = HeldOutEvaluation.__init__
    HeldOutEvaluation.__init__ = partialmethod(original, background=bool(MODES[mode]))  # type: ignore[method-assign]
    try:
        gc.collect()
        return sum(train_session(cfg, root.parent / "framework.log").intervals())
    finally:
        HeldOutEvaluation.__init__ = original  # type: ignore[method-assign]


def ratios(plan: dict) -> dict[str, float]:
    """Median loop time with evaluations inline and in the background, each over the median without them."""
    work = Path(tempfile.mkdtemp(prefix="atheria-bench-evaluation-"))
    seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        for rep in range(plan["repeats"]):
            for mode in MODES:
                seconds[mode].append(loop_seconds(plan, mode, work / f"{mode}{rep}"))
                shutil.rmtree(work / f"{mode}{rep}", ignore_errors=True)
            note(f"repetition {rep + 1}: loop seconds " + ", ".join(f"{m} {s[-1]:.2f}" for m, s in seconds.items()))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {mode: median(seconds[mode]) / median(seconds["none"]) for mode in ("inline", "background")}


def main(argv: Optional[Sequence[str]] = None) -> None:
    for mode, ratio in ratios(QUICK if parse_quick(__doc__.splitlines()[0], argv) else FULL).items():
        result(f"evaluation.{mode}.time_ratio", ratio, "x")


if __name__ == "__main__":
    main()
