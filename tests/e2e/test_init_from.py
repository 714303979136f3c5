"""`init_from`: a bad source is refused in one line before anything is written; the curriculum's phase 2 starts from
phase 1's best, every tensor of it."""
import os
import shutil
from pathlib import Path

import fsspec
import pytest
import torch

from atheria.models import build_law
from tests.e2e.test_bad_input import assert_refused
from tests.helpers import compose, load, run_train


class _Evil:
    """Unpickling this would run a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def law_checkpoint(path, arch="mlp", d_state=4, hidden_channels=8, **extra):
    """A checkpoint as Atheria writes them, with a real law's weights."""
    path.parent.mkdir(parents=True, exist_ok=True)
    law = build_law(arch, d_state, hidden_channels)
    torch.save({"global_step": 4, "state_dict": {f"law.{k}": v for k, v in law.state_dict().items()},
                "hyper_parameters": {"arch": arch, "d_state": d_state, "hidden_channels": hidden_channels}, **extra},
               path)
    return path


def truncated(path, marker):
    law_checkpoint(path)
    path.write_bytes(path.read_bytes()[:-200])


def unsafe(path, marker):
    law_checkpoint(path, x=_Evil(marker))


def not_a_checkpoint(path, marker):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("hello\n")


@pytest.mark.parametrize("make", [truncated, unsafe, not_a_checkpoint])
def test_a_bad_init_from_file_is_refused_in_one_line_like_ckpt_path(tmp_path, make):
    source, marker = tmp_path / "in" / "source.ckpt", tmp_path / "pwned"
    make(source, marker)
    proc = run_train(tmp_path / "out", "model=mlp", f"init_from={source}", cwd=tmp_path)
    assert_refused(proc, f"init_from='{source}' is not a loadable checkpoint ({source}: ", "accepted: a checkpoint")
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_init_from_a_law_none_of_whose_tensors_fits_is_refused_naming_both_laws(tmp_path):
    source = law_checkpoint(tmp_path / "in" / "mlp.ckpt")
    proc = run_train(tmp_path / "out", "model=unet", f"init_from={source}", cwd=tmp_path)
    assert_refused(proc, f"init_from='{source}'", "holds a MLP d_state=4 hidden_channels=8 law",
                   "this run's UNET d_state=4 hidden_channels=8 law", "accepted: a checkpoint of a UNET law",
                   "init_from=null")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_an_experiment_name_is_found_on_the_remote_root_when_the_machine_is_fresh(tmp_path):
    from atheria.warmstart import read_source

    remote = "memory://init-from-test"
    with fsspec.open(f"{remote}/checkpoints/phase1/last.ckpt", "wb") as f:
        torch.save(torch.load(law_checkpoint(tmp_path / "p1.ckpt", "unet"), weights_only=True), f)
    cfg = compose(tmp_path / "out", "model=unet", "model.hidden_channels=16", "init_from=phase1",
                  f"storage.remote={remote}")
    source = read_source(cfg)
    assert source.where == f"{remote}/checkpoints/phase1/last.ckpt"
    assert source.transfer.transferred == 42 and not source.transfer.left
    assert not (tmp_path / "out").exists()


def test_init_from_is_refused_for_a_language_model_rather_than_ignored():
    from atheria.config import validate
    from atheria.errors import ConfigError

    with pytest.raises(ConfigError, match=r"init_from='phase1' is invalid; accepted: null .*ckpt_path"):
        validate(compose(Path("/nonexistent"), "model=gpt2_lora", "init_from=phase1", base=("platform=local",)))


TINY_PHASE = ("qca.grid_size=8", "qca.steps=3", "run.total_episodes=2", "run.save_every=1", "platform=local")


@pytest.mark.slow
def test_curriculum_phase_2_starts_from_every_tensor_of_phase_1s_best(tmp_path):
    root = tmp_path / "out"
    one = run_train(root, "experiment=curriculum_phase1", "model.hidden_channels=8", base=TINY_PHASE)
    assert one.returncode == 0, one.stderr[-3000:]
    two = run_train(root, "experiment=curriculum_phase2", "model.hidden_channels=16", base=TINY_PHASE)
    assert two.returncode == 0, two.stderr[-3000:]
    said = [line for line in two.stdout.splitlines() if line.startswith("init_from: ")]
    assert len(said) == 1 and len(said[0]) < 400, two.stdout
    assert said[0].startswith("init_from: 42 of 42 tensors: 1 loaded, 41 seeded") and "0 left at init" in said[0]
    assert "UNET d_state=4 hidden_channels=8 law in " in said[0] and "curriculum_phase1/best-final.ckpt" in said[0]
    best = load(root / "checkpoints" / "curriculum_phase1" / "best-final.ckpt")["state_dict"]
    last = load(root / "checkpoints" / "curriculum_phase2" / "last.ckpt")
    assert last["global_step"] == 2
    widened, narrow = last["state_dict"]["law.bottleneck.0.weight"], best["law.bottleneck.0.weight"]
    assert widened.shape == (128, 64, 3, 3) and narrow.shape == (64, 32, 3, 3)
    torch.testing.assert_close(widened[:64, :32], narrow, rtol=0, atol=1e-3)  # seeded, then 2 small AdamW steps
    shutil.rmtree(root / "checkpoints" / "curriculum_phase1")  # a resumed phase 2 needs only its own checkpoints
    again = run_train(root, "experiment=curriculum_phase2", "model.hidden_channels=16", "run.total_episodes=3",
                      base=TINY_PHASE)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Resuming from episode 2" in again.stdout and "init_from:" not in again.stdout
