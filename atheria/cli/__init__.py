"""The `atheria` commands a user of a run needs from outside it: status, stop, estimate, export, render."""
from __future__ import annotations


class CliError(Exception):
    """A problem the user can fix (unreachable root, missing checkpoint, bad grid); printed as one line, exit 2."""
