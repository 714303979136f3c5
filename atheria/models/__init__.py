"""The M-law networks (nn.Module only) and their registry."""
from atheria.models.base import Law
from atheria.models.registry import ARCHITECTURES, LAWS, build_law

__all__ = ["ARCHITECTURES", "LAWS", "Law", "build_law"]
