"""The memory estimate of one episode: it lets every preset and README configuration run on a T4, at the batch of
episodes a T4 gets by default, follows what checkpointing and truncated BPTT save, and is of the size a real episode
measures."""
from pathlib import Path

import pytest
import yaml

from atheria.config import CONF_DIR
from atheria.models import ARCHITECTURES, build_law
from atheria.qca import Physics
from atheria.qca.memory import FILL_CELLS, GB, episode_bytes, fill_batch

PRESETS = CONF_DIR / "preset"
T4_FREE = 15 * GB  # a T4's 16 GB, less what CUDA keeps for itself
T4_TOTAL = 15.6e9  # what torch.cuda.get_device_properties reports of a T4's memory


def grid_of(preset: Path) -> int:
    return yaml.safe_load(preset.read_text())["qca"]["grid_size"]


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("preset", sorted(PRESETS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_preset_fits_a_t4_with_every_model_at_the_batch_a_t4_gets(preset, arch):
    law, physics, grid = build_law(arch, 4, 16), Physics(steps=50), grid_of(preset)
    batch = fill_batch(law, physics, grid, T4_TOTAL)
    assert batch > 1 and episode_bytes(law, physics, grid, batch) < T4_FREE / 2


def test_the_batch_that_fills_a_gpu_reaches_the_fill_cells_and_halves_to_fit_its_memory():
    law, physics = build_law("unet", 4, 16), Physics(steps=50)
    assert [fill_batch(law, physics, grid, 1000 * GB) for grid in (16, 32, 64, 128, 256, 512)] == [
        FILL_CELLS // 256, 64, 16, 4, 1, 1]
    one = episode_bytes(law, physics, 32, 1)
    assert fill_batch(law, physics, 32, 4 * 20 * one) == 16  # 20 episodes' memory in a quarter: 16, not 32
    assert fill_batch(law, physics, 32, one) == 1  # not even one fits a quarter: still 1 (check_memory decides)


@pytest.mark.parametrize("arch,d_state,hidden,grid", [
    ("snn_unet", 8, 32, 64),   # README: model=snn_unet model.d_state=8 model.hidden_channels=32 preset=standard
    ("unet", 16, 64, 32),      # README's sweep: model.d_state=4,8,16 model.hidden_channels=32,64 preset=quick
    ("unet", 4, 128, 128),     # README's `atheria estimate preset=long ... model.hidden_channels=128`
])
def test_the_readme_configurations_fit_a_t4(arch, d_state, hidden, grid):
    assert episode_bytes(build_law(arch, d_state, hidden), Physics(steps=50), grid, 1) < T4_FREE


def test_the_estimate_follows_grid_steps_batch_checkpointing_and_truncation():
    law = build_law("unet", 4, 16)
    full = episode_bytes(law, Physics(steps=50), 64, 1)
    assert 3.5 < episode_bytes(law, Physics(steps=50), 128, 1) / full < 4.5
    assert 1.8 < episode_bytes(law, Physics(steps=50), 64, 2) / full < 2.2
    assert 1.8 < episode_bytes(law, Physics(steps=100), 64, 1) / full < 2.2
    assert episode_bytes(law, Physics(steps=50, checkpoint_steps=True), 64, 1) < full / 5
    assert episode_bytes(law, Physics(steps=50, bptt_window=10), 64, 1) < full / 3


def test_the_estimate_is_the_size_a_real_episode_measures():
    from bench.memory import measure

    measured = measure("full", 20, 64)  # bench/memory.py: a real episode's peak above the model, in a fresh process
    estimate = episode_bytes(build_law("unet", 4, 16), Physics(steps=20), 64, 1)
    assert 0.5 < measured / estimate < 3, (measured, estimate)
