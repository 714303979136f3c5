"""Where the framework's cost per episode goes at short episodes: bench/overhead.py's alternating measurement of one
variant (default tiny: MLP, grid 16, 10 steps), repeated with one piece of the framework taken away at a time. Not
a benchmark (it has no goal): the diagnostic that says which lever is worth pulling, run before and after pulling it.

    python -m bench.profile_overhead [--variant tiny|short|""] [--episodes 102] [--repeats 3]

Each line: what was taken away, and the median Trainer / plain ratio. Taken away in turn: the checkpoint callback's
per-episode hook (its saves, latest.json, the mirror); the live plot; the progress bar's per-episode hook; the
session callback's per-episode hook (budget, signals, status.json); every Atheria callback and logger (Lightning's
own loop left). The runs without a piece are not valid training sessions (no checkpoints, no history, no status):
they only time what the piece costs.
"""
from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from bench import overhead
from bench.common import median, note, pin_threads


@contextlib.contextmanager
def patched(target: Any, name: str, value: Any) -> Iterator[None]:
    """`target.name` replaced by `value` inside the block."""
    before = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, before)


def without_callbacks() -> contextlib.ExitStack:
    """No Atheria callback and no logger: Lightning's own loop with the module as it is (and without Lightning's
    default checkpoint callback, which would take the place of ours and write into the working directory)."""
    import bench.session as session
    from atheria.callbacks import Machinery

    idle = type("Idle", (), {"stop_reason": None})()
    build_trainer = session.build_trainer
    stack = contextlib.ExitStack()
    stack.enter_context(patched(session, "build_callbacks", lambda *a, **k: Machinery([], [], idle, None, None)))
    stack.enter_context(patched(session, "build_loggers", lambda *a, **k: False))
    stack.enter_context(patched(session, "build_trainer",
                                lambda *a, **k: build_trainer(*a, enable_checkpointing=False, **k)))
    return stack


def removals() -> dict[str, Callable[[], contextlib.AbstractContextManager]]:
    from atheria.callbacks import plots, progress, session, tiered

    def nothing(*args: Any, **kwargs: Any) -> None:
        return None

    return {
        "nothing (every default callback)": contextlib.nullcontext,
        "the checkpoint saves (every 5 episodes) and their mirror": lambda: patched(
            tiered.TieredCheckpoint, "on_train_batch_end", nothing),
        "the live plot (drawn on a thread every 25 episodes)": lambda: patched(plots.TrainingPlots,
                                                                               "on_train_batch_end", nothing),
        "the progress bar's per-episode hook": lambda: patched(progress.EpisodeProgressBar, "on_train_batch_end",
                                                               nothing),
        "the session callback's per-episode hook": lambda: patched(session.SessionCallback, "on_train_batch_end",
                                                                   nothing),
        "every Atheria callback and logger": without_callbacks,
    }


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="tiny", choices=list(overhead.VARIANTS))
    parser.add_argument("--episodes", type=int, default=102)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    note(f"variant {args.variant or 'quick'}: {' '.join(overhead.VARIANTS[args.variant])}; {args.episodes} episodes "
         f"x {args.repeats} repetitions, {pin_threads()} thread(s)")
    for what, remove in removals().items():
        with tempfile.TemporaryDirectory() as tmp, remove():
            ratios = overhead.ratios_of(args.variant, args.episodes, args.repeats, Path(tmp))
        note(f"without {what}: Trainer / plain {median(ratios):.3f} (repetitions "
             f"{', '.join(f'{r:.3f}' for r in ratios)})")


if __name__ == "__main__":
    main()
