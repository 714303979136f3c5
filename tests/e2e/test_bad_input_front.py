"""The front door of train.py: a mistake on the command line is one line on stderr and exit 2 with nothing written,
with or without -m; Ctrl+C during start-up exits 130 without a traceback; `--cfg job --resolve` resolves."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.test_bad_input import assert_refused
from tests.helpers import REPO, TINY, run_train, train_cmd, wait_for

ACCEPTED_KEYS = ("trainer.*", "hydra.*")
FRONT = [  # refused before Hydra runs: no torch import, a second or two each
    ("optim.learning_rate=1e-3", "optim.learning_rate is not a config key", "did you mean optim.lr?", *ACCEPTED_KEYS),
    ("+optim.learning_rate=1e-3", "optim.learning_rate is not a config key", "did you mean optim.lr?", *ACCEPTED_KEYS),
    ("++qca.step=3", "qca.step is not a config key", "did you mean qca.steps?"),
    ("+optim.lr=1e-3", "+optim.lr adds a key the config already has", "optim.lr=VALUE"),
    ("name=énergie", "name='énergie' is invalid", "ASCII letters", "up to 200"),
    ("name=uid=0(root) gid=0(root)", "name='uid=0(root) gid=0(root)' is invalid", "ASCII letters"),
    (f"name=run_{'x' * 250}", "is invalid", "up to 200"),
    ("model.d_state=4,8", "model.d_state=4,8 is a sweep", "-m"),
    ("optim.lr", "cannot parse 'optim.lr'", "key=value"),
]


@pytest.mark.parametrize("case", FRONT, ids=[case[0][:40] for case in FRONT])
def test_a_command_line_mistake_is_one_line_before_hydra_runs(tmp_path, case):
    override, *says = case
    proc = run_train(tmp_path / "out", override, cwd=tmp_path)
    assert_refused(proc, *says)
    assert "Traceback" not in proc.stderr and list(tmp_path.iterdir()) == []


def test_a_misspelled_key_in_a_sweep_is_refused_before_hydra_writes_its_multirun_yaml(tmp_path):
    root = tmp_path / "out"
    proc = run_train(root, "model=unet,gpt2_lora", "model.lora_r=4", cwd=tmp_path, base=("-m", *TINY))
    assert_refused(proc, "model.lora_r is not a config key with model=unet", "did you mean")
    assert list(tmp_path.iterdir()) == []  # no {root}/sweeps/multirun.yaml


@pytest.mark.parametrize("value", ["abc", "nan", "inf", f"{time.time() + 86400:.0f}"],
                         ids=["text", "nan", "inf", "tomorrow"])
def test_a_session_start_that_is_no_past_epoch_time_is_refused(tmp_path, value):
    proc = run_train(tmp_path / "out", f"run.session_start={value}", cwd=tmp_path)
    assert_refused(proc, "run.session_start=", "epoch seconds", "not in the future")
    assert "Traceback" not in proc.stderr and list(tmp_path.iterdir()) == []


def _has_loaded_torch(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see the import under way")
def test_ctrl_c_during_start_up_exits_130_without_a_traceback(tmp_path):
    root = tmp_path / "out"
    proc = subprocess.Popen(train_cmd(root), cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_for(lambda: proc.poll() is not None or _has_loaded_torch(proc.pid), every=0.05)
        proc.send_signal(signal.SIGINT)  # torch is importing; training is seconds away
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err
    assert not root.exists()


def test_cfg_job_resolve_prints_the_detected_platform_values(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "train.py"), "--cfg", "job", "--resolve", "model=mlp"],
                          cwd=tmp_path, text=True, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "${" not in proc.stdout and "name: MLP_16ch_D4\n" in proc.stdout
    assert "  name: local\n" in proc.stdout and "  local: outputs\n" in proc.stdout  # platform=auto, detected
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_new_trainer_argument_is_taken_and_a_forced_key_is_used(tmp_path):
    root = tmp_path / "out"
    proc = run_train(root, "+trainer.limit_val_batches=1", "++optim.lr=3e-3", "name=front", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "lr: 0.003\n" in (root / "logs" / "front" / "config.yaml").read_text()

