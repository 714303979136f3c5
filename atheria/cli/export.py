"""`atheria export CKPT [--out PATH]`: the trained model of a checkpoint as a verified TorchScript file."""
from __future__ import annotations

import argparse
import os
from typing import Any

from atheria.cli import CliError
from atheria.cli.checkpoint import check_file, default_export, load_trained

HELP = ("Export a checkpoint's trained model as TorchScript ({root}/exports/{name}_{checkpoint}_model.pt by default, "
        "beside the run's own {name}_model.pt), verified by loading it back and comparing its output with the eager "
        "model on a random state.")


def add_parser(commands: Any) -> None:
    """Register `export` and its options."""
    p = commands.add_parser("export", help="export a checkpoint's model as verified TorchScript", description=HELP)
    p.add_argument("ckpt", help="a checkpoint file, e.g. outputs/checkpoints/NAME/best-final.ckpt")
    p.add_argument("--out", help="the .pt file to write (default: {root}/exports/{name}_{stem}_model.pt for a "
                                 "checkpoint {stem}.ckpt in {root}/checkpoints/{name}/, e.g. UNET_64ch_D8_best-final_"
                                 "model.pt, never the run's own {name}_model.pt; else {stem}_model.pt beside it)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Rebuild the module from the checkpoint, export it, and say where and what."""
    check_file(args.ckpt)
    if args.out and os.path.isdir(args.out):
        raise CliError(f"--out {args.out} is a directory; give the .pt file to write, e.g. {args.out}/model.pt")
    from atheria.modules.export import ExportError  # torch: only once the arguments are known to be good

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
