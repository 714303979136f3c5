"""The architectures by config name, found rather than listed: every Law subclass in a module of this package is
one, under its `name` in lower case (model.arch). Adding a law: its module here and its conf/model/NAME.yaml."""
import importlib
import pkgutil
from pathlib import Path

from atheria.models.base import Law


def _find_laws() -> dict[str, type[Law]]:
    """Import every module of atheria.models and collect the Law subclasses they define, by model.arch."""
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        importlib.import_module(f"atheria.models.{module.name}")
    return {cls.name.lower(): cls for cls in sorted(Law.__subclasses__(), key=lambda c: c.name)}


LAWS: dict[str, type[Law]] = _find_laws()
ARCHITECTURES: tuple[str, ...] = tuple(LAWS)


def build_law(arch: str, d_state: int, hidden_channels: int) -> Law:
    """Build the law named by model.arch; bad settings fail with a one-line error naming the key."""
    if arch not in LAWS:
        raise ValueError(f"model.arch={arch!r} is not an architecture; accepted: {', '.join(ARCHITECTURES)}")
    if d_state < 1:
        raise ValueError(f"model.d_state={d_state!r} is not a positive integer")
    if hidden_channels < 1:
        raise ValueError(f"model.hidden_channels={hidden_channels!r} is not a positive integer")
    return LAWS[arch](d_state, hidden_channels)
