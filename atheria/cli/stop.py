"""`atheria stop ROOT|URL --name N`: ask a running experiment to stop cleanly, as at a budget stop."""
from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Any

from atheria.cli import CliError
from atheria.errors import one_line

HELP = ("Ask a running experiment to stop cleanly: it finishes its episode, saves last.ckpt, mirrors and exits, "
        "within about 10 s of seeing the request.")


def add_parser(commands: Any) -> None:
    """Register `stop` and its options."""
    p = commands.add_parser("stop", help="ask a running experiment to stop cleanly", description=HELP)
    p.add_argument("root", help="a root the run reads: its storage.remote (from another machine) or storage.local")
    p.add_argument("--name", required=True, help="the experiment to stop (see `atheria status ROOT`)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Write {root}/logs/{name}/stop_request.json when the experiment is running; say what happens next."""
    from atheria.cli.status import read_runs
    from atheria.cli.status_view import is_stale
    from atheria.session.outcome import SessionState
    from atheria.session.stop_request import STOP_NAME, request_stop
    from atheria.storage.layout import Layout
    from atheria.storage.paths import join

    st = read_runs(args.root, args.name)[0]
    if st.state != SessionState.RUNNING:
        print(f"{args.name} is not running (state {st.state}, episode {st.episode}/{st.total}); nothing to stop.")
        return 0
    logs = Layout(args.root, args.name).logs
    try:
        request_stop(logs)
    except Exception as exc:  # a read-only or unreachable root
        raise CliError(f"cannot write {join(logs, STOP_NAME)}: {one_line(exc)}") from exc
    print(f"Stop requested: {join(logs, STOP_NAME)}. {args.name} (episode {st.episode}/{st.total}) polls for it "
          "every 10 s, then saves, mirrors and exits; through a Drive mount the file can take minutes to arrive.")
    if is_stale(st, datetime.now(timezone.utc)):
        print("Its status has not been updated for long: it may not be running. A request found when a session "
              "starts is removed, not honoured.")
    print(f"Follow it with: atheria status {args.root} --name {args.name} --watch")
    return 0
