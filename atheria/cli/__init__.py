"""The `atheria` commands a user of a run needs from outside it: status, stop, estimate, export, render."""
from __future__ import annotations


class CliError(Exception):
    """A problem the user can fix (unreachable root, missing checkpoint, bad grid); printed as one line, exit 2."""


def one_line(exc: BaseException) -> str:
    """An exception as one short line for an error message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:200] if lines else type(exc).__name__
