"""`atheria render CKPT`: evolve a random state with a trained law on any grid, and write PNG frames and a GIF of
its density |psi|^2 and phase."""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from atheria.cli import CliError
from atheria.cli.checkpoint import check_file, default_render_dir, load_trained

HELP = ("Evolve a random state with a checkpoint's trained law (no gradients, no training noise) on any grid, and "
        "write PNG frames and a GIF of the density |psi|^2 beside the phase.")
MAX_FRAMES = 100


def add_parser(commands: Any) -> None:
    """Register `render` and its options."""
    p = commands.add_parser("render", help="PNG frames and a GIF of a trained law evolving a random state",
                            description=HELP)
    p.add_argument("ckpt", help="a checkpoint file, e.g. outputs/checkpoints/NAME/best-final.ckpt")
    p.add_argument("--grid", type=int, default=128, help="grid side; a multiple of 4 for UNET, 2 for SNN_UNET (128)")
    p.add_argument("--steps", type=int, default=200, help="QCA steps to evolve (200)")
    p.add_argument("--every", type=int, help=f"a frame every K steps (default: about {MAX_FRAMES} frames in all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random initial state (0)")
    p.add_argument("--out", help="output directory (default: {root}/renders/{name}/ for a checkpoint in "
                                 "{root}/checkpoints/{name}/, else {stem}_render/ beside it)")
    p.set_defaults(run=run)


def check_args(args: argparse.Namespace) -> None:
    """Refuse a missing checkpoint, sizes below 1 and an --out that is a file, before torch is imported."""
    check_file(args.ckpt)
    for flag in ("grid", "steps", "every"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise CliError(f"--{flag} {value} must be a positive integer")
    if args.out and os.path.isfile(args.out):
        raise CliError(f"--out {args.out} is a file; give the directory to write the frames and the GIF into")


def run(args: argparse.Namespace) -> int:
    """Load the law, evolve under torch.no_grad(), write frame_NNNNN.png files and evolution.gif."""
    check_args(args)
    import torch

    from atheria.observe.frames import frame, write_gif
    from atheria.qca import energy, initial_state, step
    from atheria.qca.state import density_and_phase

    module, _ = load_trained(args.ckpt)
    law, physics = getattr(module, "law", None), getattr(module, "physics", None)
    if law is None or physics is None:
        raise CliError(f"render draws QCA laws; {args.ckpt} holds a {type(module).__name__} model")
    if args.grid % law.grid_multiple:
        raise CliError(f"--grid {args.grid} must be a multiple of {law.grid_multiple} for {law.name}")
    every = args.every or max(1, args.steps // MAX_FRAMES)
    out = Path(args.out or default_render_dir(args.ckpt))
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("frame_*.png"):  # frames of an earlier render would mix with these
        old.unlink()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    law = law.to(device)
    psi = initial_state(args.seed, 0, 1, args.grid, law.d_state).to(device)
    e0, memory = energy(psi), None
    frames = [frame(*density_and_phase(psi), 0)]
    frames[0].save(out / "frame_00000.png")
    with torch.no_grad():
        for t in range(1, args.steps + 1):
            psi, memory = step(law, psi, memory, e0, physics.gamma, physics.normalize)
            if t % every == 0 or t == args.steps:
                frames.append(frame(*density_and_phase(psi), t))
                frames[-1].save(out / f"frame_{t:05d}.png")
    write_gif(frames, out / "evolution.gif")
    kept = float(energy(psi)[0] / e0[0])
    print(f"Rendered {args.steps} steps of {law.name} on a {args.grid}x{args.grid} grid: {len(frames)} frames "
          f"and evolution.gif in {out} (energy kept: {kept:.0%}).")
    return 0
