"""A sweep's input: a secret is refused before Hydra records it, and every job gets an experiment of its own."""
import csv
import os

import pytest

from tests.e2e.test_bad_input import assert_refused
from tests.helpers import TINY, load, run_train

SECRET = "abc123"
SWEEP = ("-m", *(o for o in TINY if not o.startswith("run.total_episodes")), "run.monitor_every=0")


def files_holding(folder, text):
    """Files under `folder` whose bytes contain `text`."""
    return [os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs
            if text.encode() in open(os.path.join(d, f), "rb").read()]


def test_a_secret_override_in_a_sweep_is_refused_before_anything_is_written(tmp_path):
    proc = run_train(tmp_path / "out", f"+wandb.api_key={SECRET}", "model.d_state=2,4", cwd=tmp_path, base=SWEEP)
    assert_refused(proc, "wandb.api_key=*** is refused", "WANDB_API_KEY")
    assert SECRET not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    assert os.listdir(tmp_path) == []


def test_a_secret_from_a_config_file_in_a_sweep_is_refused_before_multirun_yaml(tmp_path):
    extra = tmp_path / "conf" / "extra"
    extra.mkdir(parents=True)
    (extra / "leak.yaml").write_text(f"# @package _global_\nwandb:\n  api_key: {SECRET}\n")
    proc = run_train(tmp_path / "out", "+extra=leak", "model.d_state=2,4", cwd=tmp_path,
                     base=("--config-dir", str(tmp_path / "conf"), *SWEEP))
    assert_refused(proc, "wandb.api_key=*** is refused", "WANDB_API_KEY")
    assert SECRET not in proc.stdout + proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["conf"] and files_holding(tmp_path, SECRET) == [str(extra / "leak.yaml")]


@pytest.mark.slow
def test_jobs_differing_only_in_run_length_are_two_experiments_each_run_to_its_own_end(tmp_path):
    root = tmp_path / "out"
    proc = run_train(root, "run.total_episodes=2,3", cwd=tmp_path, base=SWEEP)
    assert proc.returncode == 0, proc.stderr[-3000:]
    steps = {p.parent.name: load(p)["global_step"] for p in (root / "checkpoints").glob("*/last.ckpt")}
    assert steps == {"UNET_8ch_D4__run.total_episodes=2": 2, "UNET_8ch_D4__run.total_episodes=3": 3}
    (summary,) = (root / "sweeps").glob("sweep-*/sweep_summary.csv")
    with open(summary) as f:
        rows = {row["job"]: (row["episodes"], row["state"]) for row in csv.DictReader(f)}
    assert rows == {"UNET_8ch_D4__run.total_episodes=2": ("2/2", "completed"),
                    "UNET_8ch_D4__run.total_episodes=3": ("3/3", "completed")}
