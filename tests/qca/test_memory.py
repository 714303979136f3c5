"""The memory estimate of one episode: it lets every preset and README configuration run on a T4, follows what
checkpointing and truncated BPTT save, and is of the size a real episode measures."""
from pathlib import Path

import pytest
import yaml

from atheria.config import CONF_DIR
from atheria.models import ARCHITECTURES, build_law
from atheria.qca import Physics
from atheria.qca.memory import GB, episode_bytes

PRESETS = CONF_DIR / "preset"
T4_FREE = 15 * GB  # a T4's 16 GB, less what CUDA keeps for itself


def grid_of(preset: Path) -> int:
    return yaml.safe_load(preset.read_text())["qca"]["grid_size"]


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("preset", sorted(PRESETS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_preset_fits_a_t4_with_every_model(preset, arch):
    assert episode_bytes(build_law(arch, 4, 16), Physics(steps=50), grid_of(preset), 1) < T4_FREE


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
