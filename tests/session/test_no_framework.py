"""atheria.session is the framework-neutral core: importing any of its modules, in a fresh interpreter, loads neither
Lightning nor torch (the RL loop, the CLI and sweeps use it without them)."""
import json
import pkgutil
import subprocess
import sys

import pytest

import atheria.session
from tests.helpers import REPO

MODULES = sorted(f"atheria.session.{m.name}" for m in pkgutil.iter_modules(atheria.session.__path__))
FRAMEWORKS = ("lightning", "pytorch_lightning", "torch")


def loaded_frameworks(*modules: str) -> list[str]:
    """The frameworks in sys.modules of a fresh interpreter after importing `modules`."""
    code = (f"import importlib, json, sys\nfor m in {list(modules)!r}: importlib.import_module(m)\n"
            f"print(json.dumps([f for f in {FRAMEWORKS!r} if f in sys.modules]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_session_package_has_its_core_modules():
    assert {"atheria.session.clock", "atheria.session.guard", "atheria.session.shelf", "atheria.session.status",
            "atheria.session.stop_request", "atheria.session.events", "atheria.session.outcome"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_a_session_module_imports_no_framework(module):
    assert loaded_frameworks(module) == []


def test_all_session_modules_together_import_no_framework():
    assert loaded_frameworks("atheria.session", *MODULES) == []
