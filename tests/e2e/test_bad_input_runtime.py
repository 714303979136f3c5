"""What only the machine can tell is refused in one line before any work too: a W&B logger with no login, a model
hub out of reach, a local root that cannot be written, an episode larger than the memory this machine has free."""
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from atheria.errors import ConfigError
from atheria.runner import _check_local
from tests.e2e.test_bad_input import assert_refused
from tests.helpers import TINY, run_train, train_cmd, write_corpus

TINY_LM = ("platform=local", "model=gpt2_lora", "model.lora_r=4", "data.block_size=16", "data.batch_size=20",
           "run.total_episodes=2", "run.save_every=2", "trainer.limit_val_batches=2")


def closed_port_url() -> str:
    """An http URL on this machine where nothing listens: a model hub that cannot be reached, on any machine."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def run(root: Path, *overrides: str, env: dict, base=TINY) -> tuple[subprocess.CompletedProcess, float]:
    """train.py under exactly `env` over this environment (None values removed), and its wall time."""
    full = {k: v for k, v in {**os.environ, "PYTHONUNBUFFERED": "1", **env}.items() if v is not None}
    start = time.monotonic()
    proc = subprocess.run(train_cmd(root, *overrides, base=base), cwd=root.parent, env=full, text=True,
                          capture_output=True, timeout=300)
    return proc, time.monotonic() - start


def test_wandb_without_a_login_is_refused_before_any_work(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    proc, _ = run(tmp_path / "out", "logger=wandb",
                  env={"HOME": str(home), "WANDB_MODE": None, "WANDB_API_KEY": None, "WANDB_DIR": None})
    assert_refused(proc, "logger=wandb", "no API key", "wandb login", "WANDB_API_KEY", "WANDB_MODE=offline",
                   "logger=csv")
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_a_hub_model_out_of_reach_is_refused_in_seconds(tmp_path):
    corpus = write_corpus(tmp_path)
    proc, seconds = run(tmp_path / "out", *TINY_LM, f"data.path={corpus}", base=(),
                        env={"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": closed_port_url()})
    assert_refused(proc, "model.pretrained='gpt2'", "not in the local Hugging Face cache", "cannot be reached",
                   "model.pretrained=null", "local model folder")
    assert seconds < 45, seconds  # transformers alone retries an unreachable hub for about a minute
    assert not (tmp_path / "out").exists() and not (tmp_path / "hf").exists()


@pytest.mark.slow
def test_a_cached_hub_model_trains_with_the_hub_out_of_reach(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from atheria.lm.tokenizer import load_tokenizer

    repo = tmp_path / "hf" / "hub" / "models--atheria-test--tiny-gpt2"
    snapshot = repo / "snapshots" / ("0" * 40)  # the cache's layout, as a download leaves it
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2)).save_pretrained(snapshot)
    load_tokenizer(None).save_pretrained(snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    corpus = write_corpus(tmp_path)
    proc, seconds = run(tmp_path / "out", *TINY_LM, f"data.path={corpus}", "model.pretrained=atheria-test/tiny-gpt2",
                        base=(), env={"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": closed_port_url()})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Completed 2/2" in proc.stdout
    assert seconds < 120, seconds  # each file transformers looks for online would cost a minute of retries


def test_a_local_root_that_is_a_file_is_refused_and_nothing_is_created(tmp_path):
    root = tmp_path / "root.txt"
    root.write_text("not a folder")
    proc = run_train(root, cwd=tmp_path)
    assert_refused(proc, f"storage.local='{root}' is a file", "a directory path you can write to")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root.txt"] and root.read_text() == "not a folder"


@pytest.mark.parametrize("where,words", [
    ("file/sub/out", ["lies under the file", "file'"]),
    ("/proc/atheria-out", ["cannot be written", "in /proc"]),  # not writable, even by root
])
def test_local_roots_that_cannot_hold_folders_are_refused(tmp_path, where, words):
    (tmp_path / "file").write_text("x")
    root = str(tmp_path / where)
    with pytest.raises(ConfigError) as err:
        _check_local(root)
    assert all(w in str(err.value) for w in [f"storage.local={root!r}", "accepted: a directory path", *words])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_writable_root_that_does_not_exist_yet_passes_and_stays_absent(tmp_path):
    _check_local(str(tmp_path / "new" / "root"))
    assert list(tmp_path.iterdir()) == []


def test_an_episode_larger_than_free_memory_is_refused_with_the_figure(tmp_path):
    proc, seconds = run(tmp_path / "out", "qca.grid_size=100000", env={})
    assert_refused(proc, "qca.grid_size=100000", "qca.steps=3", "needs about", "GB per episode", "GB free",
                   "a smaller qca.grid_size", "qca.checkpoint_steps=true")
    assert seconds < 60, seconds
    assert not (tmp_path / "out").exists()
