"""Rollout pictures as a callback: the law as it is at an episode, played on the data's showcase state, drawn as a
contact sheet (PNG) and an animation (GIF) in logs/{name}/media/ and handed to the loggers that show pictures."""
from __future__ import annotations

import io
import os
import threading
from typing import Any, Callable, Optional

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from PIL import Image

from atheria.loggers import hand_over
from atheria.observe.frames import contact_sheet, write_gif
from atheria.storage.atomic import write_bytes_atomic

FRAMES = 6  # states per rollout picture: the first, the last, and evenly between
Play = Callable[[], list[Image.Image]]


class RolloutMedia(Callback):
    """Every `every` episodes (0: only at the end) and at every session's end, takes the module's `film(FRAMES)` (a
    function playing a copy of the law as it is then; a module without one gets no pictures) and draws it in a
    background thread, so training never waits for the rollout or the pictures: `media/rollout_ep{N:06d}.png` and
    `.gif` in `media_dir`, mirrored with the logs. A picture due while the previous one is still drawing is skipped.
    Each goes to the loggers from the training thread at the next episode's hook (at the end: at once), as
    `media/rollout` and `media/rollout_animation` (atheria.loggers.log_picture)."""

    def __init__(self, every: int, media_dir: str, say: Callable[[str], None] = print) -> None:
        self.every, self.media_dir, self.say = every, media_dir, say
        self._drawing: Optional[threading.Thread] = None
        self._loggers: list[Any] = []
        self._drawn: list[tuple[str, str, int]] = []  # (key, path, episode) written, not yet handed to the loggers
        self._last = -1  # the episode of the newest picture started

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._loggers = list(trainer.loggers) if trainer.is_global_zero else []

    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._hand_over()
        step = trainer.global_step
        if self.every > 0 and step % self.every == 0 and trainer.is_global_zero and not self._busy():
            play = self._film(pl_module)
            if play is not None:
                self._last = step
                self._drawing = threading.Thread(target=self.draw, args=(step, play), daemon=True,
                                                 name="atheria-rollout-media")
                self._drawing.start()

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self._drawing is not None:
            self._drawing.join()
        play = self._film(pl_module) if trainer.is_global_zero and self._last != trainer.global_step else None
        if play is not None:
            self.draw(trainer.global_step, play)
        self._hand_over()

    def _busy(self) -> bool:
        return self._drawing is not None and self._drawing.is_alive()

    def _film(self, pl_module: "pl.LightningModule") -> Optional[Play]:
        film = getattr(pl_module, "film", None)
        try:
            return film(FRAMES) if callable(film) else None
        except Exception as exc:  # a picture is worth less than the run
            self.say(f"Warning: could not copy the law for its rollout picture ({type(exc).__name__}: {exc}); "
                     "training goes on.")
            return None

    def draw(self, episode: int, play: Play) -> None:
        """Play the rollout and write its pictures; a failure is reported, never allowed to end the run."""
        try:
            frames = play()
            os.makedirs(self.media_dir, exist_ok=True)
            base = os.path.join(self.media_dir, f"rollout_ep{episode:06d}")
            sheet, animation = io.BytesIO(), io.BytesIO()
            contact_sheet(frames).save(sheet, format="PNG")
            write_gif(frames, animation, ms_per_frame=400)
            write_bytes_atomic(base + ".png", sheet.getvalue())
            write_bytes_atomic(base + ".gif", animation.getvalue())
            self._drawn.extend([("media/rollout", base + ".png", episode),
                                ("media/rollout_animation", base + ".gif", episode)])
        except Exception as exc:
            self.say(f"Warning: could not draw the rollout of episode {episode} ({type(exc).__name__}: {exc}); "
                     "training goes on.")

    def _hand_over(self) -> None:
        hand_over(self._loggers, self._drawn, self.say)
