"""What a newcomer's console shows, from train.py itself: a short default run, a rerun of a complete one, a skip for
a spent budget, and the best-final.ckpt every session leaves."""
import json
import re
import time

from tests.helpers import load, run_train

BASE = ("qca.grid_size=8", "qca.steps=3", "model.hidden_channels=8")  # tiny, but default logger and platform
NAME = "UNET_8ch_D4"
BAR = re.compile(r"^(Episodes|Validation) .*━|^\s+[\w/]+: \S+\s*$")  # the Rich bar and its metric lines


def _lines(proc) -> list[str]:
    return [line.rstrip() for line in (proc.stdout + proc.stderr).replace("\r", "\n").splitlines() if line.strip()]


def test_a_default_run_prints_a_few_lines_and_a_rerun_only_says_it_is_complete(tmp_path):
    root = tmp_path / "out"
    proc = run_train(root, "run.total_episodes=12", "run.monitor_every=4", base=BASE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = _lines(proc)
    said = [line for line in lines if not BAR.search(line)]
    assert len(said) <= 15, "\n".join(said)
    assert not [line for line in lines if re.search(r"GPU available|TPU available|Trainer.fit|v_num", line)], lines
    reports = [line for line in said if line.startswith("ep ")]
    assert [r.split(" · ")[0] for r in reports] == ["ep 1/12", "ep 4/12", "ep 8/12", "ep 12/12"], said
    assert reports[0].startswith("ep 1/12 · no GPU · RAM ") and sum("no GPU" in line for line in lines) == 1
    assert all(re.search(r" · \d:\d\d:\d\d elapsed( · [\d.]+ ep/min)?$", r) for r in reports), reports
    assert any(re.search(r"^Episodes .* 12/12 \d:\d\d:\d\d elapsed ", line) for line in lines), lines
    assert "Completed 12/12 episodes." in said

    again = run_train(root, "run.total_episodes=12", "run.monitor_every=4", base=BASE)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _lines(again) == [f"{NAME} is already complete (12/12 episodes); raise run.total_episodes to train further."]


def test_a_spent_budget_says_when_the_session_started_how_much_is_used_and_how_to_override(tmp_path):
    start = int(time.time()) - 1000
    proc = run_train(tmp_path / "out", "run.max_hours=0.01", f"run.session_start={start}", base=BASE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(start))
    assert re.search(rf"^Skipping {NAME}: the session budget is spent \(0:1\d:\d\d used of run.max_hours=0.01, which "
                     rf"stops at 90%; the session started {started} \w*, from run.session_start\)\. Run the same "
                     r"command next session to continue, or set run.session_start=<epoch seconds> if this session "
                     r"started later\.$", proc.stdout.strip()), proc.stdout


def test_a_session_shorter_than_save_every_still_leaves_best_final(tmp_path):
    root = tmp_path / "out"
    proc = run_train(root, "run.total_episodes=3", "run.save_every=10")
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpts = root / "checkpoints" / NAME
    assert sorted(p.name for p in ckpts.glob("*.ckpt")) == ["best-final.ckpt", "last.ckpt"]  # no cadence save
    assert load(ckpts / "best-final.ckpt")["global_step"] == 3
    assert json.loads((ckpts / "latest.json").read_text())["files"]["best-final.ckpt"]["step"] == 3
