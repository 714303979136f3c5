"""atheria.observe is pure: importing all its modules, in a fresh interpreter, loads neither Lightning nor torch (every
task can draw and report)."""
import pkgutil

import atheria.observe
from tests.session.test_no_framework import loaded_frameworks

MODULES = sorted(f"atheria.observe.{m.name}" for m in pkgutil.iter_modules(atheria.observe.__path__))


def test_the_observe_modules_import_no_framework():
    assert {"atheria.observe.figures", "atheria.observe.report"} <= set(MODULES)
    assert loaded_frameworks("atheria.observe", *MODULES) == []
