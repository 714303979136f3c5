"""Durations as people read them, for the console, the status view and the report."""
from __future__ import annotations

from typing import Optional


def hms(seconds: Optional[float]) -> str:
    """Seconds as H:MM:SS ('-' when unknown)."""
    if seconds is None:
        return "-"
    s = int(max(0, seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def span(seconds: Optional[float]) -> str:
    """A duration as H:MM:SS, or days and hours past a day ('-' when unknown)."""
    if seconds is not None and seconds >= 86400:
        s = int(seconds)
        return f"{s // 86400} d {s % 86400 // 3600} h"
    return hms(seconds)
