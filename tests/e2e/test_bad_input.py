"""Bad input is refused with one line naming the key and what is accepted, a non-zero exit, nothing written."""
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import torch

from atheria.config.resolvers import detect_runtime
from tests.conftest import GCS_ENV
from tests.helpers import TINY, run_train

CASES = [
    ("model=transformer", "model='transformer'", "unet"),
    ("preset=lng", "preset='lng'", "quick"),
    ("platform=colab", "platform='colab'", "colab_free"),
    ("model.arch=cnn", "model.arch='cnn'", "snn_unet"),
    ("model.d_state=0", "model.d_state=0", "positive integer"),
    ("model.hidden_channels=-8", "model.hidden_channels=-8", "positive integer"),
    ("model.d_state=four", "model.d_state='four'", "positive integer"),
    ("qca.steps=0", "qca.steps=0", "positive integer"),
    ("run.total_episodes=0", "run.total_episodes=0", "positive integer"),
    ("optim.lr=-1e-4", "optim.lr=-0.0001", "positive number"),
    ("qca.grid_size=30", "qca.grid_size=30", "multiple of 4"),
    ("qca.normalize=unit", "qca.normalize='unit'", "cap"),
    ("name=../escape", "name='../escape'", "no '/'"),
    ("ckpt_path=/nonexistent/x.ckpt", "ckpt_path='/nonexistent/x.ckpt'", "last, null"),
    ("init_from=nobody", "init_from='nobody'", "checkpoint path"),
]


@pytest.mark.parametrize("override,names,accepted", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_in_one_line(tmp_path, override, names, accepted):
    root = tmp_path / "out"
    proc = run_train(root, override, cwd=tmp_path)
    assert_refused(proc, names, accepted)
    assert not root.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def assert_refused(proc, *words):
    """Exit 2 and one stderr line, starting 'error: ', holding every one of `words`."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and all(w in lines[0] for w in words), lines[0]


def tree(root):
    """Every file under root with its size and mtime: what 'nothing written' compares."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def law_checkpoint(path, arch="unet", d_state=8, hidden_channels=8, step=4, objective="bounded"):
    """A checkpoint as Atheria writes them (step, hyperparameters, weights), of the given law; objective=None: as
    written before qca.objective existed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    hparams = {"arch": arch, "d_state": d_state, "hidden_channels": hidden_channels,
               **({"objective": objective} if objective else {})}
    torch.save({"global_step": step, "state_dict": {"law.w": torch.zeros(3)}, "hyper_parameters": hparams}, path)
    return path


def test_a_checkpoint_of_another_law_is_refused_naming_the_mismatch(tmp_path):
    ckpt = law_checkpoint(tmp_path / "in" / "unet.ckpt")
    proc = run_train(tmp_path / "out", "model=mlp", f"ckpt_path={ckpt}", cwd=tmp_path)
    assert_refused(proc, f"ckpt_path='{ckpt}'", "holds a UNET d_state=8 hidden_channels=8 objective=bounded law",
                   "this run is MLP d_state=4 hidden_channels=8", "model.arch, model.d_state differ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_last_refuses_a_newest_checkpoint_of_another_d_state_under_the_same_name(tmp_path):
    root = tmp_path / "out"
    law_checkpoint(root / "checkpoints" / "MLP_8ch_D4" / "last.ckpt", arch="mlp", d_state=8)
    before = tree(tmp_path)
    proc = run_train(root, "model=mlp", "name=MLP_8ch_D4", cwd=tmp_path)
    assert_refused(proc, "ckpt_path='last'", "holds a MLP d_state=8", "this run is MLP d_state=4",
                   "(model.d_state differs)", "ckpt_path=null")
    assert tree(tmp_path) == before


def test_a_checkpoint_trained_under_another_objective_is_refused_and_continues_under_its_own(tmp_path):
    """A run saved before qca.objective existed was trained with the reference formula: the new default must not
    silently continue it under another objective."""
    first = run_train(tmp_path / "old", "model=mlp", "qca.objective=reference", "run.total_episodes=2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    ckpt = torch.load(tmp_path / "old" / "checkpoints" / "MLP_8ch_D4" / "last.ckpt", weights_only=False)
    del ckpt["hyper_parameters"]["objective"]  # as saved before the key existed
    old = tmp_path / "in" / "old.ckpt"
    old.parent.mkdir()
    torch.save(ckpt, old)
    before = tree(tmp_path)
    proc = run_train(tmp_path / "out", "model=mlp", f"ckpt_path={old}", cwd=tmp_path)
    assert_refused(proc, f"ckpt_path='{old}'", "objective=reference law", "objective=bounded (qca.objective differs)",
                   "accepted: qca.objective=reference to continue it")
    assert tree(tmp_path) == before
    proc = run_train(tmp_path / "out", "model=mlp", f"ckpt_path={old}", "qca.objective=reference", cwd=tmp_path)
    assert proc.returncode == 0 and "Resuming from episode 2" in proc.stdout, proc.stderr
    assert "Completed 4/4 episodes." in proc.stdout


@pytest.mark.parametrize("kind", ["text", "truncated"])
def test_a_file_that_is_not_a_whole_checkpoint_is_refused(tmp_path, kind):
    bad = tmp_path / "in" / f"{kind}.ckpt"
    if kind == "text":
        bad.parent.mkdir()
        bad.write_text("these are my notes, not a checkpoint\n")
    else:
        data = law_checkpoint(bad, arch="mlp", d_state=4).read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    proc = run_train(tmp_path / "out", "model=mlp", f"ckpt_path={bad}", cwd=tmp_path)
    assert_refused(proc, f"ckpt_path='{bad}'", "not a loadable checkpoint", "accepted: last, null")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


class _Forbidden(BaseHTTPRequestHandler):
    """A storage API that answers every request as GCS does for a bucket the caller may not write."""

    def _deny(self) -> None:
        body = b'{"error": {"code": 403, "message": "caller does not have storage.objects.create access"}}'
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _deny

    def log_message(self, *args) -> None:
        return None


@pytest.fixture
def forbidden_gcs():
    """STORAGE_EMULATOR_HOST of a GCS endpoint that refuses every caller."""
    server = HTTPServer(("127.0.0.1", 0), _Forbidden)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_unauthorised_bucket_is_refused_before_training(tmp_path, forbidden_gcs):
    env = {**GCS_ENV, "STORAGE_EMULATOR_HOST": forbidden_gcs}
    proc = run_train(tmp_path / "out", "model=mlp", "storage.remote=gs://not-mine/atheria", cwd=tmp_path, env=env)
    assert_refused(proc, "storage.remote='gs://not-mine/atheria' is not writable", "Forbidden", "accepted:")
    assert "Resuming" not in proc.stdout and "starting fresh" not in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.slow
def test_an_unreachable_bucket_is_refused_before_training(tmp_path):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**GCS_ENV, "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}"}
    t0 = time.monotonic()
    proc = run_train(tmp_path / "out", "model=mlp", "storage.remote=gs://far-away/atheria", cwd=tmp_path, env=env)
    assert_refused(proc, "storage.remote='gs://far-away/atheria' is not writable", "Cannot connect to host")
    assert time.monotonic() - t0 < 90  # gcsfs's own six tries take about 33 s
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_remote_whose_parent_is_missing_is_refused_and_not_created(tmp_path):
    remote = tmp_path / "nonexistent" / "dir" / "atheria"
    proc = run_train(tmp_path / "out", "model=mlp", f"storage.remote={remote}", cwd=tmp_path)
    assert_refused(proc, f"storage.remote='{remote}'", f"below {remote.parent}, which does not exist", "accepted:")
    assert "Mirrored" not in proc.stdout and sorted(p.name for p in tmp_path.iterdir()) == []


NO_PLATFORM = tuple(o for o in TINY if not o.startswith("platform="))


@pytest.mark.skipif(detect_runtime() is not None, reason="this machine is a Colab or Kaggle runtime")
def test_a_colab_platform_off_colab_is_refused_before_writing_unless_forced(tmp_path):
    root, content = tmp_path / "x", Path("/content").exists()
    proc = run_train(root, "platform=colab_pro", cwd=tmp_path, base=NO_PLATFORM)
    assert_refused(proc, "platform=colab_pro but this machine is not a Colab runtime", "platform.force=true")
    assert not root.exists() and Path("/content").exists() == content

    forced = run_train(root, "platform=colab_pro", "platform.force=true", "storage.remote=null",
                       f"run.session_start={time.time()}", "run.total_episodes=2", cwd=tmp_path, base=NO_PLATFORM)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "on colab_pro (20 h budget)" in forced.stdout and "Completed 2/2 episodes." in forced.stdout
    assert (root / "checkpoints").is_dir() and Path("/content").exists() == content


@pytest.mark.skipif(detect_runtime() is not None, reason="this machine is a Colab or Kaggle runtime")
def test_a_kaggle_sweep_off_kaggle_is_refused_before_hydra_writes_its_sweep_folder(tmp_path):
    proc = run_train(tmp_path / "x", "platform=kaggle", "model.d_state=4,8", cwd=tmp_path, base=("-m", *NO_PLATFORM))
    assert_refused(proc, "platform=kaggle but this machine is not a Kaggle runtime", "platform.force=true")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
