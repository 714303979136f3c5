"""Export the trained model at the end of a completed run, before the final mirror carries it to durable storage."""
from __future__ import annotations

import os
from typing import Callable

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from atheria.errors import one_line
from atheria.storage.layout import Layout


class ExportCallback(Callback):
    """Writes `{exports}/{name}_model.pt` when the run completes (its total, or early stopping), for modules that
    offer `export_torchscript(path)`.

    Lightning runs plain callbacks' on_train_end before ModelCheckpoint's, so TieredCheckpoint's final mirror,
    which includes `exports/{name}_*`, carries the file. A failed export is reported and never loses the run."""

    def __init__(self, local: Layout, completed: Callable[[], bool], say: Callable[[str], None] = print) -> None:
        self.local, self.completed, self.say = local, completed, say
        self.path = os.path.join(local.exports, f"{local.name}_model.pt")

    @override
    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        export = getattr(pl_module, "export_torchscript", None)
        if export is None or not trainer.is_global_zero or not self.completed():
            return
        try:
            export(self.path)
        except Exception as exc:  # the checkpoints are saved after this hook; an export problem must not stop them
            self.say(f"Export to {self.path} failed ({one_line(exc)}); the checkpoints are intact, "
                     "try `atheria export CKPT` later.")
            return
        self.say(f"Exported the trained model (TorchScript, verified) to {self.path}")
