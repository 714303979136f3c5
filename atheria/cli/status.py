"""`atheria status ROOT|URL [--name N] [--watch]`: every experiment's status.json under a root, read through fsspec
from a local dir, a Drive path or a bucket, without a tunnel or server on the training machine."""
from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

from atheria.cli import CliError
from atheria.errors import one_line

if TYPE_CHECKING:  # imported when a command runs, so that `atheria status --help` stays light
    from atheria.session.status import Status

HELP = "Show how far the runs under a root got, their pace, ETA and budget (local dir, Drive path or URL)."


def add_parser(commands: Any) -> None:
    """Register `status` and its options."""
    p = commands.add_parser("status", help="progress, pace, ETA and budget of the runs under a root", description=HELP)
    p.add_argument("root", help="the storage root: storage.local or storage.remote of the run (path or fsspec URL)")
    p.add_argument("--name", help="only this experiment (default: every experiment under ROOT/logs/)")
    p.add_argument("--watch", action="store_true", help="refresh until no listed run is running (a probably dead "
                                                        "run counts as ended)")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between refreshes with --watch (10)")
    p.set_defaults(run=run)


def experiment_names(root: str) -> list[str]:
    """Names of the experiments under `root`/logs/; CliError when the root cannot be read."""
    from atheria.storage.layout import Layout
    from atheria.storage.paths import url_to_fs

    try:
        fs, root_path = url_to_fs(root)
        logs_path = url_to_fs(Layout.all_logs(root))[1]
        fs.invalidate_cache()  # fsspec caches listings; another machine keeps writing here
        if not fs.exists(root_path):
            raise CliError(f"{root} does not exist or cannot be reached")
        if not fs.exists(logs_path):
            return []
        entries = fs.ls(logs_path, detail=True)
    except CliError:
        raise
    except Exception as exc:  # fsspec backends raise OSError, HttpError, aiohttp and timeout errors alike
        raise CliError(f"cannot read {root}: {one_line(exc)}") from exc
    return sorted(e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e["type"] == "directory")


def read_runs(root: str, name: Optional[str] = None) -> list["Status"]:
    """The Status of every experiment under `root` with a status.json (or of `name`), sorted by name."""
    from atheria.session.status import read_status
    from atheria.storage.layout import Layout

    names = experiment_names(root)
    if name is not None and name not in names:
        known = ", ".join(names) if names else "none"
        raise CliError(f"no experiment named {name!r} under {root}; experiments there: {known}")
    runs = []
    for each in [name] if name else names:
        try:
            st = read_status(Layout(root, each).logs)
        except Exception as exc:  # a remote read that fails mid-listing: the same as an unreachable root
            raise CliError(f"cannot read {root}: {one_line(exc)}") from exc
        if st is not None:
            runs.append(st)
    if name is not None and not runs:
        raise CliError(f"experiment {name!r} under {root} has no readable status.json yet")
    return runs


def report(root: str, runs: list["Status"], now: datetime) -> str:
    """The text for one refresh: a block per run."""
    from atheria.cli.status_view import describe_status

    if not runs:
        return f"No experiment under {root} has a status.json yet (looked in {root.rstrip('/')}/logs/*/)."
    return "\n\n".join(describe_status(st, now) for st in runs)


def live(runs: list["Status"], now: datetime) -> bool:
    """True while any run is running and not probably dead."""
    from atheria.cli.status_view import is_stale
    from atheria.session.outcome import SessionState

    return any(st.state == SessionState.RUNNING and not is_stale(st, now) for st in runs)


def run(args: argparse.Namespace) -> int:
    """Print the status once, or refresh it every --interval seconds while a run is live."""
    runs = read_runs(args.root, args.name)
    while True:
        now = datetime.now(timezone.utc)
        if args.watch:
            print(("\033[H\033[J" if sys.stdout.isatty() else "") + f"{args.root}  {now:%Y-%m-%d %H:%M:%S} UTC")
        print(report(args.root, runs, now), flush=True)
        if not args.watch or not live(runs, now):
            return 0
        time.sleep(args.interval)
        try:
            runs = read_runs(args.root, args.name)
        except CliError as err:  # a network blip while watching: say so, keep the last known status
            print(f"(could not refresh: {err})", flush=True)
