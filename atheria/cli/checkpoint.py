"""A trained checkpoint as the export and render commands see it: the rebuilt module, and where its outputs go."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from atheria.cli import CliError


def default_export(ckpt: str) -> Path:
    """{root}/exports/{name}_{stem}_model.pt for a checkpoint of an experiment (apart from the run's own
    {name}_model.pt of its final law), else {stem}_model.pt beside it."""
    from atheria.storage.layout import Layout

    experiment = Layout.of_checkpoint(ckpt)
    if experiment:
        return Path(experiment.exports) / f"{experiment.name}_{Path(ckpt).stem}_model.pt"
    return Path(ckpt).with_name(f"{Path(ckpt).stem}_model.pt")


def default_render_dir(ckpt: str) -> Path:
    """{root}/renders/{name}/ for a checkpoint of an experiment, else {stem}_render/ beside it."""
    from atheria.storage.layout import Layout

    experiment = Layout.of_checkpoint(ckpt)
    if experiment:
        return Path(experiment.renders)
    return Path(ckpt).with_name(f"{Path(ckpt).stem}_render")


def check_file(ckpt: str) -> None:
    """CliError unless `ckpt` is a file: checked before torch is imported, so that a typo is answered at once."""
    if not Path(ckpt).is_file():
        raise CliError(f"{ckpt} is not a checkpoint file (for example outputs/checkpoints/NAME/best-final.ckpt)")


def load_trained(ckpt: str) -> tuple[Any, dict]:
    """The trained module (eval, CPU) and checkpoint dict of a checked file, loaded without executing pickled code;
    CliError if not."""
    from atheria.families.loading import load_module
    from atheria.storage.finder import CorruptCheckpoint

    try:
        return load_module(ckpt)
    except CorruptCheckpoint as exc:
        raise CliError(str(exc)) from exc
