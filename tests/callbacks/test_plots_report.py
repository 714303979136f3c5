"""The plot, history and report callbacks on a synthetic two-session run: the live plot drawn in the background, the
last row per episode after a kill, strict JSON and the report's sections."""
import json
from types import SimpleNamespace

import pytest
from PIL import Image

from atheria.callbacks.history import EpisodeHistory
from atheria.callbacks.plots import TrainingPlots
from atheria.callbacks.report import TrainingReport
from atheria.families.qca import QCA
from atheria.observe.figures import LIVE_NAME, SUMMARY_NAME
from atheria.observe.history import read_history
from atheria.observe.report import report_name
from atheria.session.status import Status, write_status
from atheria.storage.layout import Layout
from tests import wandb_offline
from tests.observe.synthetic import NAME, qca_rows, two_sessions


def test_live_plot_is_drawn_in_the_background_from_the_rows_of_its_episode(tmp_path):
    history, said = EpisodeHistory(str(tmp_path)), []
    for row in qca_rows(25):
        history.record(int(row["episode"]), row, "train/")
    plots = TrainingPlots(history, str(tmp_path), "UNET_16ch_D4", every=25, key_metric=QCA.key_metric,
                          say=said.append)
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


def test_the_plots_reach_tensorboard_and_wandb_as_pictures_at_their_episodes(tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tests.helpers import train_in_process

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    assert train_in_process(tmp_path, "logger=[tensorboard,wandb]", "run.total_episodes=6", "run.plot_every=2") == 0
    logs = tmp_path / "logs" / "UNET_8ch_D4"
    events = EventAccumulator(str(logs / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert {"plots/live_loss", "plots/training_summary"} <= set(events.Tags()["images"])
    live = [e.step for e in events.Images("plots/live_loss")]
    assert live[-1] == 5 and set(live) <= {1, 3, 5} and len(live) >= 2  # episodes 2, 4, 6 at steps 1, 3, 5
    (summary,) = events.Images("plots/training_summary")
    assert summary.step == 5 and summary.encoded_image_string.startswith(b"\x89PNG")
    (run,) = (logs / "wandb").glob("offline-run-*")  # W&B's offline run keeps the pictures it was given
    pictures = {p.name.split("_")[0] + "_" + p.name.split("_")[1] for p in run.glob("files/media/images/plots/*.png")}
    assert pictures == {"live_loss", "training_summary"}
    rows = wandb_offline.history(*wandb_offline.runs(logs))  # at the episodes TensorBoard has them at
    assert wandb_offline.picture_episodes(rows, "plots/live_loss") == [step + 1 for step in live]
    assert wandb_offline.picture_episodes(rows, "plots/training_summary") == [6]
