"""The rooms of atheria/ import only downwards (README "Architecture"): no cycle, no import from a lower room to a
higher one, and the framework-neutral rooms know no model family. Read from the source (every import, including
those inside functions), so a new import that breaks the layering fails here."""
import ast
from collections import defaultdict
from pathlib import Path

ATHERIA = Path(__file__).resolve().parents[1] / "atheria"
# Lowest first: a room may import only the rooms before it.
LAYERS = ("errors", "checks", "storage", "debug_log", "session", "observe", "qca", "models", "lm", "data", "modules",
          "families", "resume", "rl", "config", "sweeps", "loggers", "callbacks", "warmstart", "tasks", "runner",
          "cli", "__main__")
FAMILY_ROOMS = {"qca", "models", "lm", "data", "modules", "families"}
NEUTRAL = ("storage", "session", "observe", "callbacks")  # they see metrics, checkpoints and time, not a family


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def room_imports() -> dict[tuple[str, str], list[str]]:
    """(from room, to room) -> the files holding such an import."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in ATHERIA.rglob("*.py"):
        rel = path.relative_to(ATHERIA.parent)
        module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("atheria.") and room(name) != room(module):
                    found[room(module), room(name)].append(str(rel))
    return found


def test_every_room_has_a_layer():
    rooms = {p.stem if p.is_file() else p.name for p in ATHERIA.iterdir() if p.suffix == ".py" or
             (p.is_dir() and (p / "__init__.py").exists())} - {"__init__"}
    assert rooms - set(LAYERS) == set(), "add the new room to LAYERS (and to the README's Architecture section)"


def test_rooms_import_only_lower_rooms():
    upward = {f"{a} -> {b}": files for (a, b), files in room_imports().items() if LAYERS.index(b) > LAYERS.index(a)}
    assert upward == {}


def test_the_framework_neutral_rooms_know_no_model_family():
    known = {f"{a} -> {b}": files for (a, b), files in room_imports().items() if a in NEUTRAL and b in FAMILY_ROOMS}
    assert known == {}


def test_the_framework_neutral_rooms_take_typed_settings_not_the_config():
    """A whole config travels no lower than tasks/: the neutral rooms get frozen dataclasses (SessionSettings,
    CallbackSettings) built once from the validated config."""
    readers = sorted(str(p.relative_to(ATHERIA.parent)) for name in NEUTRAL for p in (ATHERIA / name).rglob("*.py")
                     if any(isinstance(node, (ast.Import, ast.ImportFrom)) and
                            any(n.split(".")[0] in ("omegaconf", "hydra") for n in _imported(node))
                            for node in ast.walk(ast.parse(p.read_text()))))
    assert readers == []


def _imported(node):
    return [node.module or ""] if isinstance(node, ast.ImportFrom) else [alias.name for alias in node.names]
