"""`atheria render`: PNG frames and a GIF of a trained law evolving a random state on any grid, with one-line
errors for grids the law cannot run on."""
import numpy as np
import pytest
from PIL import Image

from atheria.cli.main import main
from atheria.observe.frames import CAPTION_PX, GAP_PX, PANEL_PX


@pytest.mark.parametrize("arch", ["unet", "snn_unet"])
def test_render_writes_frames_every_k_steps_and_a_gif(tmp_path, checkpoint, capsys, arch):
    out = tmp_path / "pictures"
    out.mkdir()
    (out / "frame_09999.png").write_bytes(b"an earlier render")
    assert main(["render", str(checkpoint(arch)), "--grid", "16", "--steps", "7", "--every", "3",
                 "--out", str(out)]) == 0
    frames = sorted(p.name for p in out.glob("frame_*.png"))
    assert frames == ["frame_00000.png", "frame_00003.png", "frame_00006.png", "frame_00007.png"]
    first, last = Image.open(out / frames[0]), Image.open(out / frames[-1])
    assert first.size == (2 * PANEL_PX + GAP_PX, PANEL_PX + CAPTION_PX)
    density = np.asarray(first)[CAPTION_PX:, :PANEL_PX].reshape(-1, 3)
    assert len(np.unique(density, axis=0)) > 16, "a flat density panel"
    assert not np.array_equal(np.asarray(first)[CAPTION_PX:], np.asarray(last)[CAPTION_PX:]), "the state did not move"
    gif = Image.open(out / "evolution.gif")
    assert gif.n_frames == 4 and gif.size == first.size
    assert f"4 frames and evolution.gif in {out}" in capsys.readouterr().out


def test_render_defaults_to_the_experiments_renders_dir_and_any_grid_multiple(tmp_path, checkpoint):
    assert main(["render", str(checkpoint("mlp")), "--grid", "37", "--steps", "2"]) == 0
    out = tmp_path / "out" / "renders" / "MLP_8ch_D2"
    assert (out / "evolution.gif").is_file() and len(list(out.glob("frame_*.png"))) == 3


@pytest.mark.parametrize("args,message", [
    (["--grid", "18"], "--grid 18 must be a multiple of 4 for UNET"),
    (["--steps", "0"], "--steps 0 must be a positive integer"),
])
def test_render_refuses_what_the_law_cannot_run_in_one_line(tmp_path, checkpoint, capsys, args, message):
    assert main(["render", str(checkpoint("unet")), *args]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "out" / "renders").exists()
