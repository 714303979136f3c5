"""Rollout pictures: the law as it is at an episode, played on the showcase state in a background thread, written to
logs/{name}/media/ and handed to TensorBoard and W&B (offline, read back with their own readers) at that episode."""
import csv

import pytest
from PIL import Image

from tests import wandb_offline
from tests.helpers import train_in_process

NAME = "UNET_8ch_D4"


def train_losses(root):
    with open(root / "logs" / NAME / "metrics.csv", newline="") as f:
        return [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]


def test_rollouts_reach_the_media_folder_tensorboard_and_wandb_at_their_episodes(tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    assert train_in_process(tmp_path, "logger=[tensorboard,wandb]", "run.total_episodes=6", "run.media_every=2") == 0
    logs = tmp_path / "logs" / NAME
    media = sorted(p.name for p in (logs / "media").iterdir())
    assert {"rollout_ep000006.png", "rollout_ep000006.gif"} <= set(media)  # the session's end, always
    assert {p.split(".")[0] for p in media} <= {f"rollout_ep{e:06d}" for e in (2, 4, 6)}
    with Image.open(logs / "media" / "rollout_ep000006.gif") as gif:
        assert gif.n_frames == 4  # steps 0-3 of the tiny run's 3-step episode
    episodes = sorted(int(p[10:16]) for p in media if p.endswith(".png"))

    events = EventAccumulator(str(logs / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert [e.step for e in events.Images("media/rollout")] == [e - 1 for e in episodes]
    animations = events.Images("media/rollout_animation")
    assert [e.step for e in animations] == [e - 1 for e in episodes]
    assert animations[-1].encoded_image_string == (logs / "media" / "rollout_ep000006.gif").read_bytes()

    (run,) = (logs / "wandb").glob("offline-run-*")
    assert len(list(run.glob("files/media/images/media/rollout_*.png"))) == len(episodes)
    assert len(list(run.glob("files/media/videos/media/rollout_animation_*.gif"))) == len(episodes)
    rows = wandb_offline.history(*wandb_offline.runs(logs))  # each at its own episode, W&B's x-axis
    assert wandb_offline.picture_episodes(rows, "media/rollout") == episodes
    assert wandb_offline.picture_episodes(rows, "media/rollout_animation") == episodes


@pytest.mark.slow
def test_drawing_rollouts_leaves_training_as_it_was(tmp_path):
    assert train_in_process(tmp_path / "with", "run.media_every=1") == 0
    assert train_in_process(tmp_path / "without", "run.media_every=0") == 0
    assert train_losses(tmp_path / "with") == train_losses(tmp_path / "without")
    assert len(list((tmp_path / "with" / "logs" / NAME / "media").glob("*.png"))) >= 2
    assert [p.name for p in (tmp_path / "without" / "logs" / NAME / "media").glob("*.png")] == [
        "rollout_ep000004.png"]  # 0: at the session's end only


def test_a_rollout_that_fails_is_a_warning_not_the_end_of_the_run(tmp_path):
    from types import SimpleNamespace

    from atheria.callbacks.media import RolloutMedia

    class Module:  # a law that cannot be copied, then one whose rollout fails
        def __init__(self, fails_at):
            self.fails_at = fails_at

        def film(self, frames):
            if self.fails_at == "copy":
                raise RuntimeError("cannot copy the law")
            return lambda: (_ for _ in ()).throw(RuntimeError("rollout failed"))

    said = []
    media = RolloutMedia(1, str(tmp_path / "media"), say=said.append)
    trainer = SimpleNamespace(global_step=1, is_global_zero=True, loggers=[])
    for module in (Module("copy"), Module("play")):
        media.on_train_start(trainer, module)
        media.on_train_batch_end(trainer, module, None, None, 0)
        media.on_train_end(trainer, module)
    assert ["cannot copy the law" in s for s in said] == [True, True, False]  # its episode, and the session's end
    assert "rollout failed" in said[2]  # drawn at its episode in the background: not again at the end
    assert not (tmp_path / "media").exists()
