"""A slow, failing or dead remote never blocks or breaks training, and never publishes a partial checkpoint."""
import json
import time

import pytest

import atheria.session.kit as kit_module
import atheria.storage.mirror as mirror_module
from atheria.storage.atomic import sha256_file
from tests import faults
from tests.helpers import load, train_in_process

pytestmark = pytest.mark.slow
NAME = "MLP_8ch_D4"
EVERY = ("model=mlp", "run.total_episodes=6", "run.save_every=1", "run.sync_every=1")


class SpyMirror(mirror_module.Mirror):
    """The real Mirror, timing each submit() as seen by the training loop."""

    made: list["SpyMirror"] = []

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("backoff", 0.05)
        super().__init__(*args, **kwargs)
        self.submit_seconds: list[float] = []
        SpyMirror.made.append(self)

    def submit(self, *args, **kwargs):
        t0 = time.monotonic()
        super().submit(*args, **kwargs)
        self.submit_seconds.append(time.monotonic() - t0)


@pytest.fixture
def spy(monkeypatch):
    SpyMirror.made.clear()
    monkeypatch.setattr(kit_module, "Mirror", SpyMirror)  # where the session kit builds its mirror
    return SpyMirror.made


def assert_remote_complete(backing, step):
    ckpts = backing / "checkpoints" / NAME
    manifest = json.loads((ckpts / "latest.json").read_text())
    assert manifest["step"] == step and manifest["checkpoint"] == "last.ckpt"
    for name, entry in manifest["files"].items():
        assert sha256_file(ckpts / name) == entry["sha256"], name
    assert load(ckpts / "last.ckpt")["global_step"] == step
    assert not [p for p in ckpts.iterdir() if "partial" in p.name]


def test_slow_remote_never_blocks_training(tmp_path, spy):
    backing = tmp_path / "drive"
    remote = faults.faulty(f"slow-{tmp_path.name}", str(backing), latency=0.3, bandwidth=200_000)
    assert train_in_process(tmp_path / "out", *EVERY, f"storage.remote={remote.url}") == 0
    (mirror,) = spy
    assert mirror.last_job_seconds is not None and mirror.last_job_seconds > 0.3
    assert max(mirror.submit_seconds) < 0.2 * mirror.last_job_seconds
    assert_remote_complete(backing, 6)


@pytest.fixture
def no_start_probe(monkeypatch):
    """The start probe is tested on its own below; here the injected failures must reach the mirror."""
    import atheria.runner

    monkeypatch.setattr(atheria.runner, "_check_remote", lambda remote: None)


def test_failing_then_recovering_remote_catches_up(tmp_path, spy, capsys, no_start_probe):
    backing = tmp_path / "drive"
    remote = faults.faulty(f"flaky-{tmp_path.name}", str(backing), fail_first=3)
    assert train_in_process(tmp_path / "out", *EVERY, f"storage.remote={remote.url}") == 0
    assert spy[0].failures >= 3
    assert_remote_complete(backing, 6)
    assert "Completed 6/6" in capsys.readouterr().out


def test_dead_remote_warns_once_and_training_goes_on(tmp_path, spy, capsys, no_start_probe):
    backing = tmp_path / "drive"
    remote = faults.faulty(f"dead-{tmp_path.name}", str(backing))
    root = tmp_path / "out"
    overrides = (*EVERY, f"storage.remote={remote.url}", "run.final_sync_timeout=2")
    train_in_process(root, *overrides, "run.total_episodes=1")  # reachable at start
    remote.fail_always = True
    assert train_in_process(root, *overrides) == 0
    out = capsys.readouterr().out
    assert out.count("training goes on") == 1, out
    assert "did not finish" in out and "Completed 6/6" in out
    assert load(root / "checkpoints" / NAME / "last.ckpt")["global_step"] == 6
    manifest = json.loads((backing / "checkpoints" / NAME / "latest.json").read_text())
    assert manifest["step"] == 1  # the remote pointer never moved to files that did not arrive


def test_unreachable_remote_at_start_is_refused_before_training(tmp_path):
    from atheria.errors import ConfigError

    remote = faults.faulty(f"down-{tmp_path.name}", str(tmp_path / "drive"), fail_always=True)
    with pytest.raises(ConfigError, match=r"storage.remote='faulty://down-.*' is not writable"):
        train_in_process(tmp_path / "out", "model=mlp", f"storage.remote={remote.url}")
    assert not (tmp_path / "out").exists()


def test_a_fresh_start_never_writes_over_a_later_remote_checkpoint(tmp_path, capsys):
    backing = tmp_path / "drive"
    remote = (f"storage.remote={backing}", "model=mlp", "run.save_every=1", "run.sync_every=1")
    assert train_in_process(tmp_path / "a", *remote, "run.total_episodes=6") == 0
    before = {p.name: sha256_file(p) for p in (backing / "checkpoints" / NAME).glob("*.ckpt")}
    capsys.readouterr()
    # deliberately over again, on another machine, shorter than the remote's run
    assert train_in_process(tmp_path / "b", *remote, "run.total_episodes=3", "ckpt_path=null") == 0
    out = capsys.readouterr().out
    assert out.count("holds episode 6") == 1 and "Completed 3/3" in out, out
    assert {p.name: sha256_file(p) for p in (backing / "checkpoints" / NAME).glob("*.ckpt")} == before
    assert_remote_complete(backing, 6)
