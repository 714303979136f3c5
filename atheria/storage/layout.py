"""Where an experiment's files live under a root: checkpoints/{name}, logs/{name} (rollout pictures in
logs/{name}/media), exports/, renders/{name}."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

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
    def media(self) -> str:
        return join(self.root, "logs", self.name, "media")

    @property
    def exports(self) -> str:
        return join(self.root, "exports")

    @property
    def renders(self) -> str:
        return join(self.root, "renders", self.name)

    def rel(self, kind: str, filename: str = "") -> str:
        """A path relative to the root: rel('checkpoints', 'last.ckpt') -> 'checkpoints/{name}/last.ckpt'."""
        parts = [kind] if kind == "exports" else [kind, self.name]
        return "/".join(parts + ([filename] if filename else []))

    @staticmethod
    def all_logs(root: str) -> str:
        """{root}/logs, which holds one folder per experiment (how `atheria status` finds the experiments)."""
        return join(root, "logs")

    @classmethod
    def of_checkpoint(cls, ckpt: str) -> Optional[Layout]:
        """The experiment of a local checkpoint file that lies in {root}/checkpoints/{name}/ (links resolved), else
        None."""
        folder = os.path.dirname(os.path.realpath(ckpt))
        parent = os.path.dirname(folder)
        if os.path.basename(parent) != "checkpoints":
            return None
        return cls(os.path.dirname(parent), os.path.basename(folder))
