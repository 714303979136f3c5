"""Where an experiment's files live under a root: checkpoints/{name}, logs/{name}, exports/."""
from __future__ import annotations

from dataclasses import dataclass

from atheria.storage.paths import join


@dataclass(frozen=True)
class Layout:
    """DESIGN.md's layout of one experiment under one root (local path or URL)."""

    root: str
    name: str

    @property
    def checkpoints(self) -> str:
        return join(self.root, "checkpoints", self.name)

    @property
    def logs(self) -> str:
        return join(self.root, "logs", self.name)

    @property
    def exports(self) -> str:
        return join(self.root, "exports")

    def rel(self, kind: str, filename: str = "") -> str:
        """A path relative to the root: rel('checkpoints', 'last.ckpt') -> 'checkpoints/{name}/last.ckpt'."""
        parts = [kind] if kind == "exports" else [kind, self.name]
        return "/".join(parts + ([filename] if filename else []))
