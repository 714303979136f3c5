"""atheria.storage knows nothing of training: importing all its modules, in a fresh interpreter, loads neither
Lightning nor torch (a checkpoint is loaded with torch only inside the function that loads it)."""
import pkgutil

import atheria.storage
from tests.session.test_no_framework import loaded_frameworks

MODULES = sorted(f"atheria.storage.{m.name}" for m in pkgutil.iter_modules(atheria.storage.__path__))


def test_the_storage_modules_import_no_framework():
    assert {"atheria.storage.mirror", "atheria.storage.finder", "atheria.storage.traits"} <= set(MODULES)
    assert loaded_frameworks("atheria.storage", *MODULES) == []
