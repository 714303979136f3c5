"""Hydra multirun sweeps that survive sessions: stable job directories, reruns that skip finished jobs,
a budget shared by the whole sweep, and a summary."""
import csv
import subprocess
import sys
import time

import pytest

from tests.helpers import REPO, load

pytestmark = pytest.mark.slow
GRID = ("model=mlp", "qca.grid_size=8", "qca.steps=3", "run.save_every=2", "platform=local", "run.monitor_every=0")


def sweep(root, *overrides, timeout=600):
    cmd = [sys.executable, str(REPO / "train.py"), "-m", *GRID, f"storage.local={root}", *overrides]
    return subprocess.run(cmd, cwd=root.parent, text=True, capture_output=True, timeout=timeout)


def steps(root):
    return {p.parent.name: load(p)["global_step"] for p in (root / "checkpoints").glob("*/last.ckpt")}


def summary(root):
    (path,) = (root / "sweeps").glob("sweep-*/sweep_summary.csv")
    with open(path) as f:
        return {row["job"]: row for row in csv.DictReader(f)}


def test_a_2x2_sweep_makes_four_experiments_and_a_rerun_trains_nothing(tmp_path):
    root = tmp_path / "out"
    first = sweep(root, "model.d_state=2,4", "model.hidden_channels=8,16", "run.total_episodes=4")
    assert first.returncode == 0, first.stderr[-3000:]
    names = {"MLP_8ch_D2", "MLP_16ch_D2", "MLP_8ch_D4", "MLP_16ch_D4"}
    assert steps(root) == {n: 4 for n in names}
    rows = summary(root)
    assert set(rows) == names and all(r["state"] == "completed" and r["episodes"] == "4/4" for r in rows.values())
    assert all(float(r["best_loss_smooth"]) > 0 for r in rows.values())
    before = {p: p.stat().st_mtime_ns for p in (root / "checkpoints").glob("*/*.ckpt")}
    again = sweep(root, "model.d_state=2,4", "model.hidden_channels=8,16", "run.total_episodes=4")
    assert again.returncode == 0 and again.stdout.count("already complete (4/4 episodes)") == 4
    assert {p: p.stat().st_mtime_ns for p in (root / "checkpoints").glob("*/*.ckpt")} == before


def test_names_carry_swept_settings_not_fixed_ones(tmp_path):
    root = tmp_path / "out"
    proc = sweep(root, "optim.lr=1e-3,1e-4", "run.total_episodes=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert set(steps(root)) == {"MLP_16ch_D4__optim.lr=0.001", "MLP_16ch_D4__optim.lr=0.0001"}


def test_a_sweep_stopped_by_the_budget_skips_the_rest_and_the_rerun_completes_every_job(tmp_path):
    root = tmp_path / "out"
    jobs = ("model.d_state=2,3,4", "qca.steps=30", "run.total_episodes=400", "run.save_every=50")
    start = time.time()
    # One hour of budget of which all but ~20 s (start-up included) is used: the sweep cannot finish.
    stopped = sweep(root, *jobs, "run.max_hours=1", f"run.session_start={start - 3600 * 0.9 + 20}")
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert "Skipping" in stopped.stdout and "session budget is spent" in stopped.stdout
    first = steps(root)
    assert len(first) < 3 or min(first.values()) < 400
    skipped = [line.split()[1].rstrip(":") for line in stopped.stdout.splitlines() if line.startswith("Skipping")]
    assert skipped and not any(name in first for name in skipped)  # skipped jobs were never started
    resumed = sweep(root, *jobs)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert steps(root) == {"MLP_16ch_D2": 400, "MLP_16ch_D3": 400, "MLP_16ch_D4": 400}
    assert all(r["state"] == "completed" for r in summary(root).values())


def test_optuna_search_minimises_the_best_smoothed_loss(tmp_path):
    import yaml

    root = tmp_path / "out"
    proc = sweep(root, "hparams_search=qca_optuna", "hydra.sweeper.n_trials=3", "run.total_episodes=4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = list((root / "logs").iterdir())
    assert len(trials) == 3 and all("__optim.lr=" in t.name for t in trials)
    results = yaml.safe_load((root / "sweeps" / "optimization_results.yaml").read_text())
    best = min(float(r["best_loss_smooth"]) for r in summary(root).values())
    assert results["best_value"] == pytest.approx(best)
    assert set(results["best_params"]) == {"optim.lr", "model.hidden_channels", "model.d_state"}
