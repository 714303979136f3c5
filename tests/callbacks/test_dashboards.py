"""What a dashboard shows of a run, read back from W&B's offline run file and with TensorBoard's own reader:
the composed config, tags, `episode` as W&B's x-axis, the run summary (how the session ended, its key figures, the
smoothed loss's minimum), TensorBoard's hparams panel and summary text."""
import csv
import sys
from types import SimpleNamespace

import pytest

from tests import wandb_offline
from tests.helpers import train_in_process

NAME = "UNET_8ch_D4"


def test_the_config_tags_and_summary_reach_wandb_and_tensorboard(tmp_path, monkeypatch):
    import wandb
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    assert train_in_process(tmp_path, "logger=[tensorboard,wandb]", "run.total_episodes=6", "run.eval_every=4",
                            "run.eval_episodes=2") == 0
    assert wandb.run is None  # the session ended its W&B run: a later one in this process starts its own
    logs = tmp_path / "logs" / NAME
    with open(logs / "metrics.csv", newline="") as f:
        smooth = [float(r["train/loss_smooth"]) for r in csv.DictReader(f) if r.get("train/loss_smooth")]

    (run,) = wandb_offline.runs(logs)  # what W&B wrote to its offline run file
    run_id, tags, config = wandb_offline.run_info(run)
    assert run_id == (logs / "wandb_id.txt").read_text().strip()
    assert tags == ["unet", "preset:quick", "platform:local"]
    assert config["run"]["preset"] == "quick" and config["model"]["arch"] == "unet"
    assert config["qca"]["grid_size"] == 8 and "lr" not in config  # the composed config, not the module's hparams
    summary = wandb_offline.summary(run)
    assert summary["state"] == "completed" and summary["episode"] == 6 and summary["total_episodes"] == 6
    assert summary["best_checkpoint"] == "ep000004.ckpt"  # the one evaluated save
    assert summary["train/loss_smooth"]["min"] == pytest.approx(min(smooth), rel=1e-6)
    assert summary["gain_over_trivial_best"] == summary["qca/gain_over_trivial"]  # one evaluation: its figure
    assert wandb_offline.x_axes(run) == {"*": "episode", "train/loss_smooth": "episode", "val/loss": "episode"}
    assert wandb_offline.metric_episodes(wandb_offline.history(run)) == list(range(1, 7))

    events = EventAccumulator(str(logs / "tensorboard"))
    events.Reload()
    start = [plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
             for content in events.PluginTagToContent("hparams").values()
             if plugin_data_pb2.HParamsPluginData.FromString(content).HasField("session_start_info")]
    assert len(start) == 1
    assert start[0].hparams["run/preset"].string_value == "quick"
    assert start[0].hparams["qca/grid_size"].number_value == 8
    assert "hp_metric" not in events.Tags()["scalars"]  # no placeholder point
    (text,) = events.Tensors("summary/text_summary")
    assert text.step == 5 and "| state | completed |" in text.tensor_proto.string_val[0].decode()


@pytest.mark.slow
def test_a_resumed_session_replaying_episodes_leaves_one_point_each(tmp_path, monkeypatch):
    from lightning.pytorch.loggers import WandbLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    settings = ("logger=[tensorboard,wandb]", "run.media_every=0")
    assert train_in_process(tmp_path, *settings, "run.total_episodes=6") == 0
    logs = tmp_path / "logs" / NAME
    assert (logs / "wandb_episode.txt").read_text() == "6"
    with open(logs / "metrics.csv", newline="") as f:  # as after a kill before metrics.csv got episodes 5 and 6
        reader = csv.DictReader(f)
        rows = [r for r in reader if not r.get("episode") or float(r["episode"]) <= 4]
    with open(logs / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=reader.fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    sent, log_metrics = [], WandbLogger.log_metrics

    def spy(self, metrics, step=None):  # what reaches W&B's own logger, passed on unchanged
        sent.append(step)
        log_metrics(self, metrics, step)

    monkeypatch.setattr(WandbLogger, "log_metrics", spy)
    older = tmp_path / "checkpoints" / NAME / "ep000002.ckpt"  # as after a kill past episode 6 with its save lost
    assert train_in_process(tmp_path, *settings, "run.total_episodes=8", f"ckpt_path={older}") == 0
    assert sent and min(s for s in sent if s is not None) == 6  # episodes 3-6 replayed, not sent again
    assert {6, 7} <= set(sent)  # ... and episodes 7 and 8 were
    assert (logs / "wandb_episode.txt").read_text() == "8"

    events = EventAccumulator(str(logs / "tensorboard"))
    events.Reload()  # TensorBoard drops the points the resumed session purged (from its step on)
    assert [e.step for e in events.Scalars("train/loss")] == list(range(8))
    with open(logs / "metrics.csv", newline="") as f:
        episodes = [int(float(r["episode"])) for r in csv.DictReader(f) if r.get("train/loss")]
    assert episodes == list(range(1, 9))


@pytest.mark.slow
@pytest.mark.parametrize("upload", [True, False])
def test_best_final_goes_to_wandb_as_an_artifact_only_when_asked(tmp_path, monkeypatch, capsys, upload):

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))  # where W&B stages an artifact's files
    assert train_in_process(tmp_path, "logger=wandb", "run.total_episodes=4",
                            f"logger.wandb.log_checkpoints={str(upload).lower()}") == 0
    best = (tmp_path / "checkpoints" / NAME / "best-final.ckpt").read_bytes()
    staged = [p for p in (tmp_path / "wandb-data").rglob("*") if p.is_file() and p.read_bytes() == best]
    assert len(staged) == (1 if upload else 0)
    (run,) = wandb_offline.runs(tmp_path / "logs" / NAME)
    artifact = {"name": f"{NAME}-best", "type": "model", "aliases": ["best", "ep4", "latest"],
                "metadata": {"episode": 4}, "files": ["best-final.ckpt"]}  # once, named by the experiment
    assert wandb_offline.artifacts(run) == ([artifact] if upload else [])
    assert "could not upload" not in capsys.readouterr().out


def test_a_run_without_wandbs_logger_needs_no_wandb_at_the_end_of_a_session(tmp_path, monkeypatch):
    from lightning.pytorch.loggers import CSVLogger

    from atheria.loggers import upload_best

    monkeypatch.setitem(sys.modules, "wandb", None)  # as where wandb is not installed: importing it raises
    with pytest.raises(ImportError):
        import wandb  # noqa: F401
    upload_best([CSVLogger(tmp_path)], str(tmp_path / "best-final.ckpt"), 3)  # found on a GPU machine without wandb


def test_a_picture_reaches_wandb_at_its_episode_and_leaves_the_replay_marker_to_the_metrics(tmp_path, monkeypatch):
    from PIL import Image

    from atheria.loggers import AtheriaWandbLogger, log_picture, log_rows

    monkeypatch.setenv("WANDB_SILENT", "true")
    marker = tmp_path / "wandb_episode.txt"
    marker.write_text("2")  # W&B got episodes 1 and 2 before a kill: this session replays them
    logger = AtheriaWandbLogger(save_dir=str(tmp_path), name="x", id="abc", offline=True, marker=str(marker),
                                logged_until=0)
    picture = tmp_path / "picture.png"
    Image.new("RGB", (4, 4)).save(picture)
    trainer = SimpleNamespace(is_global_zero=True, loggers=[logger])
    log_rows(trainer, [(2, {"train/loss": 1.0}), (3, {"train/loss": 1.0})])
    log_picture([logger], "plots/live_loss", str(picture), 2)  # replayed: W&B has it
    log_picture([logger], "plots/live_loss", str(picture), 9)  # drawn before episodes 4-9's rows reached W&B
    assert marker.read_text() == "3"  # a kill now replays episodes 4-9, whose points W&B never got
    logger.experiment.finish()
    rows = wandb_offline.history(*wandb_offline.runs(tmp_path))
    assert wandb_offline.metric_episodes(rows) == [3]
    assert wandb_offline.picture_episodes(rows, "plots/live_loss") == [9]


def test_the_marker_is_a_number_at_every_moment_a_kill_could_come(tmp_path):
    """The W&B marker, rewritten every episode, read at thousands of moments while a real process rewrites it, and
    after a SIGKILL: always a number. An empty file (CI saw one: open-then-write, killed between) reads as 0 and lets
    every replayed point reach W&B a second time."""
    import signal
    import subprocess

    marker = tmp_path / "wandb_episode.txt"
    writer = ("import sys\nfrom atheria.storage.atomic import replace_text\nreplace_text(sys.argv[1], '0')\n"
              "print(flush=True)\nfor step in range(1, 10**9): replace_text(sys.argv[1], str(step))")
    proc = subprocess.Popen([sys.executable, "-c", writer, str(marker)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"\n"  # writing from now on
        seen = [marker.read_text() for _ in range(20000)]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    seen.append(marker.read_text())
    assert all(text.isdigit() for text in seen), [text for text in seen if not text.isdigit()][:3]
    assert int(seen[-1]) > int(seen[0])  # it was rewritten all along
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == [marker.name]  # none to mirror
