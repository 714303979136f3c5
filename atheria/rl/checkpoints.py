"""The scheduler's checkpoints: one weights-only torch file per save, under the usual layout and manifest.

A checkpoint holds the agent (algorithm, network and optimizer state dicts, step count), the scheduled model — the
LoRA adapters the agent's schedule produced in its best evaluation episode (before any evaluation: the base
adapters) — under the keys an LMModule checkpoint has (`hyper_parameters`, `state_dict` with `model.` names), so
`atheria generate CKPT` works unchanged, and `global_step` (the agent's timesteps) for the checkpoint finder.
The language model's optimizer is not kept: every episode starts from the base adapters with a fresh one.
"""
from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from typing import Any, Optional

from torch import Tensor

from atheria.session.shelf import BEST_FINAL, LAST, Shelf
from atheria.storage.atomic import link_atomic, save_torch_atomic
from atheria.storage.finder import CorruptCheckpoint, load_checkpoint

_BEST_NAME = re.compile(r"^step(\d+)\.ckpt$")
ADAPTER_PREFIX = "model."  # how LMModule checkpoints name the adapters in their state_dict


@dataclass
class Scheduled:
    """The model an evaluation produced: its adapters, the agent's mean evaluation reward, and at which step."""

    adapters: dict[str, Tensor]
    reward: Optional[float] = None
    step: Optional[int] = None


def scheduler_checkpoint(step: int, agent: dict[str, Any], hparams: dict[str, Any], scheduled: Scheduled,
                         rl: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint dict of one save (plain tensors, numbers, strings and containers only)."""
    return {"global_step": int(step), "hyper_parameters": dict(hparams), "agent": agent, "rl": rl,
            "state_dict": {ADAPTER_PREFIX + k: v for k, v in scheduled.adapters.items()},
            "evaluation": None if scheduled.reward is None else {"reward": scheduled.reward, "step": scheduled.step}}


def adapters_of(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """The LoRA adapters of an LMModule-style state_dict, named as in the model itself."""
    return {k[len(ADAPTER_PREFIX):]: v for k, v in state_dict.items() if k.startswith(ADAPTER_PREFIX)}


def scheduled_of(ckpt: dict[str, Any]) -> Scheduled:
    """The scheduled model a checkpoint carries, to continue from."""
    evaluation = ckpt.get("evaluation") or {}
    return Scheduled(adapters_of(ckpt["state_dict"]), evaluation.get("reward"), evaluation.get("step"))


class SchedulerCheckpoints:
    """last.ckpt at every save and stop; stepNNNNNNNN.ckpt after an evaluation when its reward is among the best
    `keep_best`; best-final.ckpt (the best) at the end of each session; latest.json and the mirror via the Shelf."""

    def __init__(self, shelf: Shelf, keep_best: int) -> None:
        self.shelf, self.keep_best = shelf, keep_best
        self.dir = shelf.local.checkpoints
        self.steps: dict[str, int] = {}
        self.best: dict[str, float] = {}  # file name -> evaluation reward
        self._kept: Optional[tuple[int, str]] = None  # (step, name) of the evaluated checkpoint kept last

    def open(self, step: int) -> None:
        """Session start: the shelf's clean-up, and the best checkpoints earlier sessions kept (by their rewards)."""
        self.shelf.open(step)
        for name in sorted(os.listdir(self.dir)) if os.path.isdir(self.dir) else []:
            if _BEST_NAME.match(name):
                try:
                    ckpt = load_checkpoint(os.path.join(self.dir, name))
                except CorruptCheckpoint:
                    continue
                self.best[name] = float((ckpt.get("evaluation") or {}).get("reward", float("-inf")))
                self.steps[name] = int(ckpt["global_step"])
        for name in (LAST, BEST_FINAL):
            if os.path.isfile(os.path.join(self.dir, name)):
                self.steps[name] = int(load_checkpoint(os.path.join(self.dir, name))["global_step"])

    def save_last(self, ckpt: dict[str, Any]) -> None:
        """Write last.ckpt, publish the manifest, queue the mirror. After an evaluation kept this step's checkpoint,
        last.ckpt is a hard link to that file rather than a second write of the same dict (as in TieredCheckpoint)."""
        step, kept = ckpt["global_step"], self._kept
        if kept is not None and kept[0] == step and link_atomic(os.path.join(self.dir, kept[1]),
                                                                os.path.join(self.dir, LAST)):
            self.steps[LAST] = int(step)
            self.shelf.events.add("save", step, file=LAST)
        else:
            self._write(LAST, ckpt)
        self._publish(step)

    def offer_best(self, ckpt: dict[str, Any], reward: float) -> None:
        """Keep this evaluated checkpoint if its reward is among the best `keep_best`, dropping the worst."""
        worst = min(self.best, key=self.best.get) if len(self.best) >= self.keep_best else None
        if worst is not None and reward <= self.best[worst]:
            return
        name = f"step{ckpt['global_step']:08d}.ckpt"
        self._write(name, ckpt)
        self._kept = (int(ckpt["global_step"]), name)
        self.best[name] = reward
        if worst is not None:
            del self.best[worst], self.steps[worst]
            os.remove(os.path.join(self.dir, worst))
        self._publish(ckpt["global_step"])

    def finish(self, step: int) -> Optional[str]:
        """End of session: copy the best checkpoint to best-final.ckpt, publish, and wait for the final mirror."""
        best = max(self.best, key=self.best.get) if self.best else None
        if best is not None:
            target = os.path.join(self.dir, BEST_FINAL)
            shutil.copyfile(os.path.join(self.dir, best), target + ".tmp")
            os.replace(target + ".tmp", target)
            self.steps[BEST_FINAL] = self.steps[best]
            self._publish(step)
        self.shelf.finish(step)
        return best

    def _write(self, name: str, ckpt: dict[str, Any]) -> None:
        t0 = time.monotonic()
        save_torch_atomic(ckpt, os.path.join(self.dir, name))
        self.shelf.clock.note_save(time.monotonic() - t0)
        self.steps[name] = int(ckpt["global_step"])
        self.shelf.events.add("save", ckpt["global_step"], file=name)

    def _publish(self, step: int) -> None:
        self.shelf.publish(step, dict(self.steps))
        self.shelf.sync(step)
