"""Pictures of a state: its density |psi|^2 beside its phase, as one RGB frame with a caption (from plain arrays:
atheria.qca.state.density_and_phase makes them), a sheet of frames, and a GIF of frames."""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Sequence, Union

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont

PANEL_PX = 256  # grids smaller than this are scaled up (nearest neighbour) so that cells stay visible
CAPTION_PX, GAP_PX = 22, 4


def colour(values: np.ndarray, cmap: str, lo: float, hi: float, scale: int) -> np.ndarray:
    """A 2-D array as uint8 RGB through a matplotlib colormap over [lo, hi], each cell `scale` pixels wide."""
    unit = np.clip((values - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    rgb = (colormaps[cmap](unit)[..., :3] * 255).astype(np.uint8)
    return rgb.repeat(scale, axis=0).repeat(scale, axis=1)


def frame(rho: np.ndarray, phase: np.ndarray, step: int) -> Image.Image:
    """[density | phase] of one state: the density (magma) up to its 99.5th percentile, the phase of its first
    component (twilight, cyclic over [-pi, pi])."""
    scale = max(1, -(-PANEL_PX // rho.shape[0]))
    top = float(np.percentile(rho, 99.5))
    left = colour(rho, "magma", 0.0, top, scale)
    right = colour(phase, "twilight", -np.pi, np.pi, scale)
    height, width = left.shape[0], left.shape[1]
    canvas = np.zeros((height + CAPTION_PX, 2 * width + GAP_PX, 3), dtype=np.uint8)
    canvas[CAPTION_PX:, :width] = left
    canvas[CAPTION_PX:, width + GAP_PX:] = right
    image = Image.fromarray(canvas)
    draw, font = ImageDraw.Draw(image), ImageFont.load_default(size=14)
    draw.text((4, 3), f"step {step}  density |psi|^2 (mean {rho.mean():.3g})", fill="white", font=font)
    draw.text((width + GAP_PX + 4, 3), "phase of psi_0", fill="white", font=font)
    return image


def write_gif(frames: Sequence[Image.Image], target: Union[Path, BinaryIO], ms_per_frame: int = 80) -> None:
    """An endlessly looping GIF of the frames, to a file path or a binary file object."""
    frames[0].save(target, format="GIF", save_all=True, append_images=list(frames[1:]), duration=ms_per_frame,
                   loop=0)


def contact_sheet(frames: Sequence[Image.Image], columns: int = 3) -> Image.Image:
    """The frames (all of one size) on one picture, `columns` to a row, in order."""
    width, height = frames[0].size
    rows = -(-len(frames) // columns)
    sheet = Image.new("RGB", (columns * width + (columns - 1) * GAP_PX, rows * height + (rows - 1) * GAP_PX))
    for i, picture in enumerate(frames):
        sheet.paste(picture, ((i % columns) * (width + GAP_PX), (i // columns) * (height + GAP_PX)))
    return sheet
