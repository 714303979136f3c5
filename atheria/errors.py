"""The error a user sees as one line, and the one way an exception becomes one line."""
from __future__ import annotations

from typing import Optional


class ConfigError(ValueError):
    """A config value (or a file or place it names) Atheria cannot run with; its message is one line for the user."""


def one_line(exc: BaseException, limit: int = 200, *, typed: bool = False, prefer: Optional[str] = None) -> str:
    """An exception as one short line: its first non-empty line (or the first holding `prefer`), whitespace
    collapsed, cut at `limit` characters, prefixed by its type when `typed`; its type alone when it says nothing."""
    lines = [" ".join(line.split()) for line in str(exc).splitlines() if line.strip()]
    line = next((x for x in lines if prefer and prefer in x), lines[0] if lines else "")
    if not line:
        return type(exc).__name__
    return f"{type(exc).__name__}: {line}"[:limit] if typed else line[:limit]
