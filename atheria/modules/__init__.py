"""LightningModules: the glue between a model family and Lightning (a config builds one in atheria/families/)."""
from __future__ import annotations

from atheria.modules.qca import QCAModule

__all__ = ["QCAModule"]
