"""train.py end to end in real subprocesses: every architecture trains, saves, resumes and repeats itself."""
import pytest
import torch

from tests.helpers import metrics, run_train

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("arch", ["unet", "snn_unet", "mlp", "deep_qca"])
def test_each_architecture_trains_and_leaves_last_ckpt(tmp_path, arch):
    root = tmp_path / "out"
    proc = run_train(root, f"model={arch}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    name = f"{arch.upper()}_8ch_D4"
    last = root / "checkpoints" / name / "last.ckpt"
    assert last.is_file()
    ckpt = torch.load(last, map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 4
    assert any(k.startswith("law.") for k in ckpt["state_dict"])
    rows = metrics(root, name)
    assert [int(float(r["episode"])) for r in rows] == [1, 2, 3, 4]
    assert all(0.0 <= float(r["train/survival_rate"]) <= 1.0 for r in rows)
    assert str(root / "checkpoints" / name) in proc.stdout


def test_resume_continues_the_episode_count(tmp_path):
    root = tmp_path / "out"
    first = run_train(root, "model=mlp")
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_train(root, "model=mlp", "run.total_episodes=7")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Resuming from" in second.stdout
    ckpt = torch.load(root / "checkpoints" / "MLP_8ch_D4" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 7
    episodes = [int(float(r["episode"])) for r in metrics(root, "MLP_8ch_D4")]
    assert episodes == [1, 2, 3, 4, 5, 6, 7]


def test_same_seed_same_losses_and_another_seed_differs(tmp_path):
    losses = []
    for run, seed in (("a", 1), ("b", 1), ("c", 2)):
        root = tmp_path / run
        proc = run_train(root, "model=mlp", f"seed={seed}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        losses.append([r["train/loss"] for r in metrics(root, "MLP_8ch_D4")])
    assert losses[0] == losses[1]
    assert losses[0] != losses[2]


def test_fresh_start_with_ckpt_path_null(tmp_path):
    root = tmp_path / "out"
    assert run_train(root, "model=mlp").returncode == 0
    proc = run_train(root, "model=mlp", "ckpt_path=null", "name=again")
    assert proc.returncode == 0 and "Starting fresh" in proc.stdout
    assert (root / "checkpoints" / "again" / "last.ckpt").is_file()
