"""`atheria status` against a local dir, memory:// and the GCS emulator: every field, a probably dead run,
selection by name, unreachable roots, and --watch ending when the run ends."""
import json
import re
import subprocess
import sys
import time
from dataclasses import asdict, replace
from datetime import datetime, timedelta, timezone

import pytest

from atheria.cli.main import main
from atheria.session.status import Status, utc_iso, write_status
from atheria.storage.atomic import write_bytes_atomic
from atheria.storage.paths import join
from tests.helpers import REPO, wait_for

RUNNING = Status("UNET_64ch_D8", 2000, episode=800, loss_smooth=0.123456, episodes_per_min=2.5, eta_s=28800.0,
                 last_checkpoint="/content/atheria/checkpoints/UNET_64ch_D8/ep000800.ckpt",
                 budget_hours=20.0, budget_used=0.25, cadence_s=30.0)


def put(root: str, status: Status, age_s: float = 0.0) -> None:
    """Write a status.json under root as a run would, `age_s` seconds old."""
    if age_s == 0.0:
        write_status(join(root, "logs", status.name), status)
        return
    old = replace(status, updated=(datetime.now(timezone.utc) - timedelta(seconds=age_s)).isoformat())
    write_bytes_atomic(join(root, "logs", status.name, "status.json"), json.dumps(asdict(old)).encode())


@pytest.fixture(params=["local", "memory", "gcs"])
def root(request, tmp_path):
    """A storage root of each kind, empty."""
    if request.param == "local":
        return str(tmp_path / "out")
    if request.param == "memory":
        return f"memory://status-{tmp_path.name}"
    return f"{request.getfixturevalue('gcs_root')}/status-{tmp_path.name}"


def test_status_lists_every_experiment_with_its_progress_and_flags_a_dead_one(root, capsys):
    put(root, replace(RUNNING, last_checkpoint_at=utc_iso(time.time() - 180)))
    put(root, replace(RUNNING, name="SNN_stale", episode=10), age_s=2 * 3600)
    put(root, replace(RUNNING, name="MLP_done", state="completed", episode=2000, eta_s=None), age_s=3 * 86400)
    assert main(["status", root]) == 0
    out = capsys.readouterr().out
    blocks = {b.split()[0]: b for b in out.strip().split("\n\n")}
    assert list(blocks) == ["MLP_done", "SNN_stale", "UNET_64ch_D8"]
    live = blocks["UNET_64ch_D8"]
    for part in ("UNET_64ch_D8  running", "[############------------------]  40%", "episode 800/2000",
                 "loss 0.1235 (smoothed)", "2.5 episodes/min", "ETA 8:00:00", "budget 25% of 20 h",
                 "last checkpoint ep000800.ckpt, 3 min ago"):
        assert part in live, part
    assert re.search(r"updated \d s ago by \S+ \(pid \d+\)", live), live
    assert "probably dead" not in live
    assert "probably dead" in blocks["SNN_stale"] and "no update for 2:00:0" in blocks["SNN_stale"]
    assert "MLP_done  completed" in blocks["MLP_done"] and "probably dead" not in blocks["MLP_done"]


def test_name_selects_one_experiment_and_an_unknown_one_is_an_error(root, capsys):
    put(root, RUNNING)
    put(root, replace(RUNNING, name="other"))
    assert main(["status", root, "--name", "other"]) == 0
    assert capsys.readouterr().out.startswith("other  running")
    assert main(["status", root, "--name", "nope"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: no experiment named 'nope' under {root}; experiments there: UNET_64ch_D8, other\n"


def test_an_unreachable_root_exits_2_with_one_line(tmp_path, gcs_root, capsys):
    for root in (str(tmp_path / "missing"), f"memory://nothing-{tmp_path.name}", "gs://no-such-bucket-atheria/x"):
        assert main(["status", root]) == 2, root
        err = capsys.readouterr().err
        assert err.startswith("error: ") and root in err and err.count("\n") == 1, err


def test_a_root_without_runs_says_so(tmp_path, capsys):
    (tmp_path / "logs").mkdir()
    assert main(["status", str(tmp_path)]) == 0
    assert "No experiment under" in capsys.readouterr().out


def test_watch_ends_at_once_when_the_only_running_run_is_dead(tmp_path, capsys):
    put(str(tmp_path), RUNNING, age_s=3600)
    start = time.monotonic()
    assert main(["status", str(tmp_path), "--watch", "--interval", "30"]) == 0
    assert time.monotonic() - start < 5 and "probably dead" in capsys.readouterr().out


@pytest.mark.slow
def test_watch_refreshes_until_the_run_ends(tmp_path):
    root, log = str(tmp_path / "out"), tmp_path / "watch.txt"
    put(root, RUNNING)
    with open(log, "w") as out:
        watch = subprocess.Popen([sys.executable, "-m", "atheria", "status", root, "--watch", "--interval", "0.2"],
                                 cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        wait_for(lambda: log.read_text().count("UNET_64ch_D8  running") >= 2, timeout=60)
        assert watch.poll() is None, "the watch ended while the run was running"
        put(root, replace(RUNNING, state="completed", episode=2000, eta_s=None))
        assert watch.wait(timeout=60) == 0
    text = log.read_text()
    assert text.rstrip().splitlines()[-4] == "UNET_64ch_D8  completed"
    assert text.count(f"{root}  ") == text.count("UNET_64ch_D8  ")
