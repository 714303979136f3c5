"""`atheria export CKPT [--out PATH]`: the trained model of a checkpoint as a verified TorchScript file."""
from __future__ import annotations

import argparse
import os
from typing import Any

from atheria.cli import CliError

HELP = ("Export a checkpoint's trained model as TorchScript ({root}/exports/{name}_model.pt by default), verified by "
        "loading it back and comparing its output with the eager model on a random state.")


def add_parser(commands: Any) -> None:
    """Register `export` and its options."""
    p = commands.add_parser("export", help="export a checkpoint's model as verified TorchScript", description=HELP)
    p.add_argument("ckpt", help="a checkpoint file, e.g. outputs/checkpoints/NAME/best-final.ckpt")
    p.add_argument("--out", help="the .pt file to write (default: {root}/exports/{name}_model.pt for a checkpoint "
                                 "in {root}/checkpoints/{name}/, else {stem}_model.pt beside it)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Rebuild the module from the checkpoint, export it, and say where and what."""
    from atheria.cli.checkpoint import default_export, load_trained
    from atheria.modules.export import ExportError

    module, ckpt = load_trained(args.ckpt)
    export = getattr(module, "export_torchscript", None)
    if export is None:
        raise CliError(f"{type(module).__name__} models offer no TorchScript export")
    out = str(args.out or default_export(args.ckpt))
    try:
        export(out)
    except ExportError as exc:
        raise CliError(str(exc)) from exc
    print(f"Exported episode {ckpt.get('global_step', '?')} of {args.ckpt} to {out} "
          f"({os.path.getsize(out) / 1e6:.2f} MB), verified against the eager model.")
    return 0
