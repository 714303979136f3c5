"""A trained checkpoint as the export and render commands see it: the rebuilt module, and where its outputs go."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from atheria.cli import CliError


def experiment_of(ckpt: str) -> Optional[tuple[Path, str]]:
    """(root, name) when the checkpoint lies in {root}/checkpoints/{name}/, else None."""
    path = Path(ckpt).resolve()
    return (path.parents[2], path.parent.name) if path.parent.parent.name == "checkpoints" else None


def default_export(ckpt: str) -> Path:
    """{root}/exports/{name}_{stem}_model.pt for a checkpoint of an experiment (apart from the run's own
    {name}_model.pt of its final law), else {stem}_model.pt beside it."""
    found = experiment_of(ckpt)
    if found:
        return found[0] / "exports" / f"{found[1]}_{Path(ckpt).stem}_model.pt"
    return Path(ckpt).with_name(f"{Path(ckpt).stem}_model.pt")


def default_render_dir(ckpt: str) -> Path:
    """{root}/renders/{name}/ for a checkpoint of an experiment, else {stem}_render/ beside it."""
    found = experiment_of(ckpt)
    if found:
        return found[0] / "renders" / found[1]
    return Path(ckpt).with_name(f"{Path(ckpt).stem}_render")


def check_file(ckpt: str) -> None:
    """CliError unless `ckpt` is a file: checked before torch is imported, so that a typo is answered at once."""
    if not Path(ckpt).is_file():
        raise CliError(f"{ckpt} is not a checkpoint file (for example outputs/checkpoints/NAME/best-final.ckpt)")


def load_trained(ckpt: str) -> tuple[Any, dict]:
    """The trained module (eval, CPU) and checkpoint dict of a checked file, loaded without executing pickled code;
    CliError if not."""
    from atheria.modules.loading import load_module
    from atheria.storage.finder import CorruptCheckpoint

    try:
        return load_module(ckpt)
    except CorruptCheckpoint as exc:
        raise CliError(str(exc)) from exc
