"""`atheria estimate [overrides]`: how long a run of this config takes here, and whether it fits the platform's
session budget, from a few real training episodes (or an assumed GPU speed with --cells-per-second)."""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Any, Sequence

from atheria.cli import CliError
from atheria.errors import one_line

HELP = ("Time a few real training episodes of the composed config on this machine, then predict episodes per hour, "
        "the time for run.total_episodes, and whether it fits the platform's session budget. A line per episode "
        "shows progress; at --max-seconds or on Ctrl-C it estimates from what it has measured.")


def add_parser(commands: Any) -> None:
    """Register `estimate` and its options."""
    p = commands.add_parser("estimate", help="predict a run's duration here and whether it fits the budget",
                            description=HELP)
    p.add_argument("overrides", nargs="*", help="overrides as for train.py, e.g. preset=long platform=colab_pro "
                                                "model=unet model.hidden_channels=128 (options go before or after)")
    p.add_argument("--episodes", type=int, default=3, help="episodes to time after one warm-up episode (3)")
    p.add_argument("--max-seconds", type=float, default=60, metavar="S",
                   help="stop timing after S seconds and estimate from what was measured: whole episodes, else the "
                        "first episode's forward steps (60)")
    p.add_argument("--cells-per-second", type=float, metavar="X",
                   help="skip timing and assume X cell-steps per second, one cell-step being one grid cell through "
                        "one QCA step, forward and backward counted together: an episode takes grid^2 x steps x "
                        "batch / X seconds (for planning a GPU run from a laptop)")
    p.set_defaults(run=run)


def compose_config(overrides: Sequence[str]) -> Any:
    """The config train.py would run with these overrides, validated; a bad one is a one-line CliError."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from atheria.config import CONF_DIR, check_group_choices, register_resolvers
    from atheria.errors import ConfigError
    from atheria.tasks import check

    register_resolvers()
    try:
        check_group_choices(overrides, CONF_DIR)
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=list(overrides))
        check(cfg)
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    except (HydraException, OmegaConfBaseException) as exc:
        raise CliError(one_line(exc)) from exc
    return cfg


def hours(seconds: float) -> str:
    """A duration as H:MM:SS with the hours as a number."""
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d} ({seconds:,.1f} s = {seconds / 3600:.2f} h)"


def plan(cfg: Any, seconds_per_episode: float) -> list[str]:
    """Episodes per hour, the predicted time of run.total_episodes, and how it fits the session budget."""
    run, total = cfg.run, cfg.run.total_episodes
    lines = [f"Episodes per hour: {3600 / seconds_per_episode:,.0f}",
             f"Predicted: {total} episodes (run.total_episodes) in {hours(total * seconds_per_episode)}, training "
             "episodes only (start-up, saves and mirrors add a little)."]
    if not run.max_hours:
        lines.append("Budget: none (run.max_hours=null), so the run goes on until it completes.")
        return lines
    usable_s = run.max_hours * run.stop_at * 3600
    fit = int(usable_s // seconds_per_episode)
    budget = (f"Budget: run.max_hours={run.max_hours:g} x run.stop_at={run.stop_at:g} = {usable_s / 3600:.3g} h "
              "per session")
    if fit >= total:
        lines.append(f"{budget}: fits; about {fit:,} episodes would fit.")
    else:
        lines.append(f"{budget}: does not fit; about {fit:,} of {total} episodes fit in one session, so "
                     f"{math.ceil(total / max(fit, 1))} sessions of the same command (each resumes the last).")
    return lines


def assumed(cfg: Any, cells_per_second: float) -> float:
    """Seconds per episode at an assumed speed: grid^2 x steps x batch / X (QCA laws only)."""
    from atheria.families import family_of

    if cells_per_second <= 0:
        raise CliError(f"--cells-per-second {cells_per_second:g} must be a positive number")
    cell_steps = family_of(cfg).cell_steps
    if cell_steps is None:
        raise CliError(f"--cells-per-second plans QCA laws (grid x steps); model.family={cfg.model.family} "
                       "is timed on this machine without it")
    q, per_episode = cfg.qca, cell_steps(cfg) / cells_per_second
    print(f"Assumed {cells_per_second:g} cell-steps/s: {q.grid_size}^2 grid x {q.steps} steps x batch "
          f"{q.batch_size} = {cell_steps(cfg):,} cell-steps, {per_episode:.4g} s per episode.")
    return per_episode


def measured(cfg: Any, episodes: int, max_seconds: float) -> int:
    """Time real episodes in a thread, then print the time per episode, what it comes from, and the plan; stopped
    early, estimate from what was measured. Returns the exit code: 0, 2 when nothing was measured, 128 + a signal."""
    from atheria.cli.timing import WARMUP, start_timing, watch_until_done
    from atheria.families import family_of

    print(f"Timing {episodes} training episodes after {WARMUP} warm-up, for at most {max_seconds:g} s "
          "(--max-seconds; Ctrl-C stops sooner, estimating from what was measured)...", flush=True)
    watch = start_timing(cfg, episodes)
    stopped, code = watch_until_done(watch, episodes, max_seconds)
    if watch.error is not None and not stopped:
        raise watch.error
    per_episode, source = watch.per_episode(time.perf_counter())
    if stopped:
        print(f"{stopped}; estimating from {source}.")
    if per_episode is None:
        print(f"error: nothing was measured ({source}); allow more time with --max-seconds", file=sys.stderr)
        code = code or 2
    else:
        cell_steps = family_of(cfg).cell_steps
        rate = (f" ({cell_steps(cfg) / per_episode:.3g} cell-steps/s, usable as --cells-per-second elsewhere)"
                if cell_steps else "")
        print(f"{'Measured' if watch.ends else 'Extrapolated'} on {watch.device}: {per_episode:.4g} s per "
              f"episode{rate}.")
        print("\n".join(plan(cfg, per_episode)))
    sys.stdout.flush()
    if not watch.done.is_set():  # inside a torch kernel it cannot be stopped, and nothing was written: leave at once
        os._exit(code)
    return code


def run(args: argparse.Namespace) -> int:
    """Compose, then time real episodes (or assume --cells-per-second), and print the plan."""
    if args.episodes < 1:
        raise CliError(f"--episodes {args.episodes} must be a positive integer")
    if not args.max_seconds > 0:
        raise CliError(f"--max-seconds {args.max_seconds:g} must be a positive number of seconds")
    from atheria.tasks.train import describe  # torch: only once the options are known to be good
    cfg = compose_config(args.overrides)
    print(describe(cfg))
    if args.cells_per_second is None:
        return measured(cfg, args.episodes, args.max_seconds)
    print("\n".join(plan(cfg, assumed(cfg, args.cells_per_second))))
    return 0
