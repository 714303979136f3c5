"""Plots, history and report cores on a synthetic two-session run: four decodable panels, the key metric of either
family, the last row per episode after a kill, sessions from the timeline, strict JSON and the report's sections."""
import json
import math
from types import SimpleNamespace

import pytest
from matplotlib.image import imread
from PIL import Image

from atheria.callbacks.history import EpisodeHistory
from atheria.callbacks.plots import LIVE_NAME, SUMMARY_NAME, TrainingPlots, live_figure, save_png, summary_figure
from atheria.callbacks.report import TrainingReport, report_name
from atheria.observe.history import read_history
from atheria.observe.training_log import sessions
from atheria.session.events import EventLog, read_events
from atheria.session.status import Status, write_status
from atheria.storage.layout import Layout

NAME = "UNET_8ch_D4"


def qca_rows(n: int = 30) -> list[dict[str, float]]:
    return [{"episode": float(e), "train/loss": 3 - e / n, "train/loss_smooth": 3.1 - e / n,
             "train/survival_rate": e / n} for e in range(1, n + 1)]


def two_sessions(logs_dir: str) -> list[dict]:
    """A budget stop at episode 20 (saves every 10, one mirror), then a resume that completes at 30."""
    log = EventLog(logs_dir)
    log.add("start", 0, budget_hours=10.0)
    for e in (10, 20):
        log.add("save", e, file=f"ep{e:06d}.ckpt")
        log.add("save", e, file="last.ckpt")
    log.add("mirror", 20, remote="/drive")
    log.add("stop", 20, reason="stopped-budget")
    log.add("resume", 20, budget_hours=None)
    log.add("save", 30, file="last.ckpt")
    log.add("stop", 30, reason="completed")
    return read_events(logs_dir)


def test_summary_has_four_panels_and_the_png_decodes(tmp_path):
    fig = summary_figure(qca_rows(), two_sessions(str(tmp_path)), NAME)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "survival rate", "checkpoint timeline", "loss distribution"]
    assert len(fig.axes[0].lines) == 2 + 1  # raw, smoothed, and the resume at episode 20
    stops = {c.get_label() for c in fig.axes[2].collections} & {"stopped-budget", "completed"}
    assert stops == {"stopped-budget", "completed"}
    path = tmp_path / "training_summary.png"
    save_png(fig, str(path))
    assert imread(path).shape == (800, 1200, 4)
    assert Image.open(path).text["Description"] == "panels: " + "; ".join(titles)


def test_live_plot_is_drawn_in_the_background_from_the_rows_of_its_episode(tmp_path):
    history, said = EpisodeHistory(str(tmp_path)), []
    for row in qca_rows(25):
        history.record(int(row["episode"]), row, "train/")
    plots = TrainingPlots(history, str(tmp_path), "UNET_16ch_D4", every=25, say=said.append)
    trainer = SimpleNamespace(global_step=25)
    plots.on_train_batch_end(trainer, None, None, None, 0)
    assert plots.drawing()  # the training thread is back while matplotlib draws (about 0.1 s)
    first = plots._drawing
    for row in qca_rows(50)[25:]:
        history.record(int(row["episode"]), row, "train/")
    trainer.global_step = 50
    plots.on_train_batch_end(trainer, None, None, None, 0)
    assert plots._drawing is first  # due again while still drawing: skipped, not queued behind it
    first.join()
    assert Image.open(tmp_path / LIVE_NAME).text["Title"] == "UNET_16ch_D4: episode 25"  # the rows of its episode
    plots.on_train_end(trainer, None)
    assert Image.open(tmp_path / LIVE_NAME).text["Title"] == "UNET_16ch_D4: episode 50"
    assert Image.open(tmp_path / SUMMARY_NAME).text["Title"] == "UNET_16ch_D4: training summary, 50 episodes"
    assert said == []


def test_key_metric_is_perplexity_for_a_language_model_and_a_note_when_neither(tmp_path):
    lm = [{"episode": float(e), "train/loss": 5.0 - e / 100} for e in range(1, 101)]
    for row in lm[49::50]:
        row.update({"val/loss": row["train/loss"], "val/perplexity": math.exp(row["train/loss"])})
    fig = summary_figure(lm, [], "gpt2")
    assert fig.axes[1].get_title() == "validation perplexity"
    assert list(fig.axes[1].lines[0].get_xdata()) == [50.0, 100.0]
    bare = summary_figure([{"episode": 1.0, "train/loss": 1.0}], [], "bare")
    assert bare.axes[1].get_title() == "key metric" and len(bare.axes) == 4
    empty = summary_figure([], [], "empty")  # a session stopped before its first episode
    save_png(empty, str(tmp_path / "empty.png"))
    assert imread(tmp_path / "empty.png").ndim == 3
    live = live_figure(qca_rows(5), NAME)
    assert len(live.axes) == 1 and live.get_suptitle() == f"{NAME}: episode 5"


def test_read_history_keeps_the_last_row_per_episode(tmp_path):
    (tmp_path / "metrics.csv").write_text(
        "episode,step,train/loss,train/loss_smooth,val/perplexity,resources/ram_used_gb\n"
        "1.0,0,3.0,3.0,,1.5\n"
        "2.0,1,2.0,2.9,,\n"
        "3.0,2,1.0,2.7,,\n"      # episodes 2 and 3 ran, then a kill -9 before their checkpoint ...
        "2.0,1,2.5,2.95,,\n"     # ... so they ran again after the resume from episode 1
        "3.0,2,1.5,2.8,,\n"
        ",2,,,7.5,\n"            # a validation row: no episode column, counted from step
        "4.0,3,0.9")             # a row cut off by the kill
    history = read_history(str(tmp_path))
    assert sorted(history) == [1, 2, 3, 4]
    assert history[2] == {"train/loss": 2.5, "train/loss_smooth": 2.95}
    assert history[3] == {"train/loss": 1.5, "train/loss_smooth": 2.8, "val/perplexity": 7.5}
    assert history[4] == {"train/loss": 0.9}
    seeded = EpisodeHistory(str(tmp_path))
    seeded.on_train_start(type("T", (), {"global_step": 2})(), None)  # resumed at episode 2: 3 and 4 rerun
    assert [r["episode"] for r in seeded.rows()] == [1.0, 2.0]


def test_sessions_come_from_the_timeline(tmp_path):
    found = sessions(two_sessions(str(tmp_path)) + [{"t": "x", "event": "resume", "episode": 30}])
    assert [(s["from_episode"], s["to_episode"], s["saves"], s["mirrors"], s["outcome"]) for s in found] == [
        (0, 20, 2, 1, "stopped-budget"), (20, 30, 1, 0, "completed"), (30, 30, 0, 0, None)]
    assert found[0]["budget_hours"] == 10.0 and found[2]["ended"] is None


@pytest.mark.parametrize("state, total, words", [
    ("stopped-budget", 50, "Stopped at episode 30/50 to stay within the session budget"),
    ("completed", 30, "Completed all 30 episodes."),
    ("completed", 50, "Completed at episode 30/50: run.early_stop ended it"),
])
def test_report_and_json_after_a_stop(tmp_path, state, total, words):
    local = Layout(str(tmp_path), NAME)
    two_sessions(local.logs)
    write_status(local.logs, Status(NAME, total, state=state, episode=30, budget_hours=10.0, budget_used=0.85))
    history = EpisodeHistory(local.logs)
    for row in qca_rows():
        history.record(int(row["episode"]), {k: v for k, v in row.items() if k != "episode"}, "train/")
    history.record(30, {"train/survival_rate": float("nan")}, "train/")
    config = {"name": NAME, "run": {"total_episodes": 50}, "wandb": {"api_key": "***"}}
    best = {"file": "ep000020.ckpt", "monitor": "train/loss_smooth", "score": 2.43}
    TrainingReport(history, local, Layout("/drive", NAME), config, "python train.py preset=long",
                   say=lambda _: None).write(best)
    log = json.loads((tmp_path / "logs" / NAME / "training_log.json").read_text())
    assert log["outcome"]["state"] == state and log["episodes"] == {"done": 30, "total": total, "logged": 30}
    assert [x["episode"] for x in log["losses"]] == list(range(1, 31))
    assert log["losses"][0] == {"episode": 1, "loss": 3 - 1 / 30, "loss_smooth": 3.1 - 1 / 30}
    assert log["metrics"]["per_episode"][29]["train/survival_rate"] is None  # NaN is written as null
    assert log["metrics"]["final"]["train/survival_rate"] == pytest.approx(29 / 30)
    assert log["config"] == config and log["checkpoints"]["best"] == best
    assert [s["outcome"] for s in log["sessions"]] == ["stopped-budget", "completed"]
    report = (tmp_path / "logs" / NAME / report_name(NAME)).read_text()
    assert words in report and "at the end of session 2" in report
    assert "`checkpoints/UNET_8ch_D4/ep000020.ckpt`: train/loss_smooth = 2.43" in report
    assert "![training summary](training_summary.png)" in report and "mirrored to `/drive`" in report
    assert "- `logs/UNET_8ch_D4/training_log.json`" in report and "api_key: '***'" in report
    assert report.rstrip().endswith("python train.py preset=long")
    assert ("The run is complete" in report) == (state == "completed")
