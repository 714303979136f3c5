"""Where the framework's cost per episode goes at short episodes: bench/overhead.py's alternating measurement of one
variant (default tiny: MLP, grid 16, 10 steps), repeated with one piece of the framework taken away at a time. Not
a benchmark (it has no goal): the diagnostic that says which lever is worth pulling, run before and after pulling it.

    python -m bench.profile_overhead [--variant tiny|short|""] [--episodes 102] [--repeats 3]

Each line: what was taken away, and the median Trainer / plain ratio. Taken away in turn: all but two of the
module's per-episode `self.log` calls (train/loss and train/loss_smooth kept); the progress bar's per-episode
hooks; the early write of each episode's metrics.csv row; the session callback's per-episode hook (budget, signals,
status.json); every Atheria callback and logger (Lightning's own loop left, with its 8 `self.log` calls); and
that with a single `self.log`. The runs without a piece are not valid training sessions (no history, no status):
they only time what the piece costs.
"""
from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import lightning.pytorch as pl

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


def keep_logs(*names: str) -> contextlib.ExitStack:
    """LightningModule.log passes only `names` through; log_dict logs nothing."""
    original = pl.LightningModule.log

    def log(self: pl.LightningModule, name: str, *args: Any, **kwargs: Any) -> None:
        if name in names:
            original(self, name, *args, **kwargs)

    stack = contextlib.ExitStack()
    stack.enter_context(patched(pl.LightningModule, "log", log))
    stack.enter_context(patched(pl.LightningModule, "log_dict", lambda self, *a, **k: None))
    return stack


def without_callbacks() -> contextlib.ExitStack:
    """No Atheria callback and no logger: Lightning's own loop with the module as it is (and without Lightning's
    default checkpoint callback, which would take the place of ours and write into the working directory)."""
    import bench.session as session
    from atheria.callbacks import Machinery

    idle = type("Idle", (), {"stop_reason": None})()
    build_trainer = session.build_trainer
    stack = contextlib.ExitStack()
    stack.enter_context(patched(session, "build_callbacks", lambda *a, **k: Machinery([], idle, None, None)))
    stack.enter_context(patched(session, "build_loggers", lambda *a, **k: False))
    stack.enter_context(patched(session, "build_trainer",
                                lambda *a, **k: build_trainer(*a, enable_checkpointing=False, **k)))
    return stack


def removals() -> dict[str, Callable[[], contextlib.AbstractContextManager]]:
    from atheria.callbacks import progress, session, tiered

    def nothing(*args: Any, **kwargs: Any) -> None:
        return None

    def both(*managers: Callable[[], contextlib.AbstractContextManager]) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        for manager in managers:
            stack.enter_context(manager())
        return stack

    return {
        "nothing (every default callback, 8 self.log calls per episode)": contextlib.nullcontext,
        "6 of the 8 self.log calls": lambda: keep_logs("train/loss", "train/loss_smooth"),
        "the progress bar's per-episode hook": lambda: patched(progress.EpisodeProgressBar, "on_train_batch_end",
                                                               nothing),
        "the early metrics.csv row": lambda: patched(tiered, "write_row_ahead", nothing),
        "the session callback's per-episode hook": lambda: patched(session.SessionCallback, "on_train_batch_end",
                                                                   nothing),
        "every Atheria callback and logger": without_callbacks,
        "every Atheria callback and logger, and 7 of the 8 self.log calls": lambda: both(
            without_callbacks, lambda: keep_logs("train/loss")),
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
