"""What a user who walked away gets, end to end: the resource block on the console and in metrics.csv, the plots,
training_log.json and the report after a budget stop, and again, over the whole history, after the resumed
session completes; all of it mirrored to the remote."""
import csv
import json
import time

# hydra.utils, lightning and these atheria modules are imported up front (the runner imports them lazily), so the
# in-process session's few seconds of budget go to training rather than to imports.
import hydra.utils  # noqa: F401
import lightning.pytorch  # noqa: F401
import psutil
import pytest
from matplotlib.image import imread
from PIL import Image

import atheria.callbacks.plots  # noqa: F401
import atheria.callbacks.report  # noqa: F401
import atheria.data  # noqa: F401
import atheria.modules  # noqa: F401
from tests.helpers import run_train, train_in_process

pytestmark = pytest.mark.slow
NAME = "MLP_8ch_D4"
# Every QCA run scores the trivial baselines (run.eval_episodes held-out episodes), drawn on the loss panel.
PANELS = ("panels: loss, and held-out loss beside trivial baselines; survival rate; checkpoint timeline; "
          "loss distribution")


def _logs(root):
    return root / "logs" / NAME


def _resource_rows(root):
    with open(_logs(root) / "metrics.csv") as f:
        return [r for r in csv.DictReader(f) if r.get("resources/ram_total_gb")]


def _outputs(root):
    """The training log, the report's text, and the summary PNG's panel list (after checking both PNGs decode)."""
    logs = _logs(root)
    for png in ("live_loss.png", "training_summary.png"):
        assert imread(logs / png).ndim == 3
    log = json.loads((logs / "training_log.json").read_text())
    return log, (logs / f"{NAME}_REPORT.md").read_text(), Image.open(logs / "training_summary.png").text["Description"]


def test_budget_stop_then_completion_report_the_whole_history(tmp_path, capsys):
    root, remote = tmp_path / "out", tmp_path / "remote"
    # In process (start-up is quick and steady here): a 36 s budget of which 20 s are used, so it stops at 90%
    # (32.4 s) after some seconds of tiny episodes (12 s less start-up: room for 10 on a loaded machine, whose
    # stop also comes earlier, as it keeps 1.25 times its slowest episode in reserve).
    code = train_in_process(root, "model=mlp", "run.total_episodes=100000", "run.save_every=10", "run.monitor_every=10",
                            "run.max_hours=0.01",
                            f"run.session_start={time.time() - 20}", f"storage.remote={remote}")
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("no GPU") == 1 and "ep 1/100000 · no GPU · " in out and "\nep 10/100000 · RAM " in out
    assert "left of 0:00:36" in out and "ep/min" in out
    rows = _resource_rows(root)
    assert [int(float(r["episode"])) for r in rows[:2]] == [1, 10]
    assert float(rows[0]["resources/ram_total_gb"]) == pytest.approx(psutil.virtual_memory().total / 2 ** 30)
    assert rows[0]["resources/gpu_util"] == "nan" and 0 < float(rows[0]["resources/remaining_s"]) < 16

    log, report, panels = _outputs(root)
    stopped = log["episodes"]["done"]
    assert stopped >= 10 and log["outcome"]["state"] == "stopped-budget"
    assert [x["episode"] for x in log["losses"]] == list(range(1, stopped + 1))
    assert log["config"]["run"]["max_hours"] == 0.01 and log["checkpoints"]["latest"]["step"] == stopped
    assert [s["outcome"] for s in log["sessions"]] == ["stopped-budget"]
    assert f"Stopped at episode {stopped}/100000 to stay within the session budget" in report
    assert "Run the same command again" in report
    assert f"`checkpoints/{NAME}/{log['checkpoints']['best']['file']}`" in report
    assert panels == PANELS
    for name in ("training_log.json", f"{NAME}_REPORT.md", "training_summary.png", "live_loss.png"):
        assert (remote / "logs" / NAME / name).read_bytes() == (_logs(root) / name).read_bytes()

    # The next session, from the command line (Hydra), completes the run; the report covers both sessions.
    second = run_train(root, "model=mlp", f"run.total_episodes={stopped + 3}", f"storage.remote={remote}",
                       "ckpt_path=last")
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"ep {stopped + 1}/{stopped + 3} · no GPU" in second.stdout  # first episode of the session
    log, report, panels = _outputs(root)
    assert log["outcome"]["state"] == "completed"
    assert [x["episode"] for x in log["losses"]] == list(range(1, stopped + 4))
    assert [(s["from_episode"], s["outcome"]) for s in log["sessions"]] == [(0, "stopped-budget"),
                                                                            (stopped, "completed")]
    assert f"Completed all {stopped + 3} episodes." in report and "at the end of session 2" in report
    command = report.rstrip().splitlines()[-1].strip()
    assert "The run is complete" in report and command.startswith("python train.py ")
    assert f"run.total_episodes={stopped + 3}" in command and "ckpt_path" not in command
    assert panels == PANELS
    assert json.loads((remote / "logs" / NAME / "training_log.json").read_text()) == log
