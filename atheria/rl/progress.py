"""logs/{name}/progress.csv: the scheduler's training curve, one row per sb3 log dump, appended across sessions.

An sb3 KVWriter, so the values come from the library's own logger (rollout and train statistics, and the evaluation
reward our evaluation records); sb3's own CSV writer starts the file over on every session.
"""
from __future__ import annotations

import csv
import os
from typing import Any, Callable, Optional

from stable_baselines3.common.logger import KVWriter

PROGRESS_NAME = "progress.csv"
# Our column: the sb3 logger keys it is read from (the first one present), with a sign for losses kept negated.
COLUMNS: dict[str, tuple[tuple[str, ...], float]] = {
    "reward_mean": (("rollout/ep_rew_mean",), 1.0),
    "eval_reward": (("eval/mean_reward",), 1.0),
    "policy_loss": (("train/policy_gradient_loss", "train/policy_loss"), 1.0),  # PPO, A2C
    "value_loss": (("train/value_loss",), 1.0),
    "actor_loss": (("train/actor_loss",), 1.0),  # SAC
    "critic_loss": (("train/critic_loss",), 1.0),
    "entropy": (("train/entropy_loss",), -1.0),  # PPO and A2C log minus the policy's entropy
    "ent_coef": (("train/ent_coef",), 1.0),
    "learning_rate": (("train/learning_rate",), 1.0),
}
FIELDS = ["episode", "step", *COLUMNS]


class ProgressCSV(KVWriter):
    """Appends a row per dump (episode: the training episode under way; step: the agent's timesteps) and says it in
    one line on the console."""

    def __init__(self, logs_dir: str, episode: Callable[[], int], say: Callable[[str], None] = print) -> None:
        self.path = os.path.join(logs_dir, PROGRESS_NAME)
        self.episode, self.say = episode, say
        os.makedirs(logs_dir, exist_ok=True)

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        row: dict[str, Any] = {"episode": self.episode(), "step": step}
        for column, (keys, sign) in COLUMNS.items():
            value = _first(key_values, keys)
            row[column] = "" if value is None else sign * value
        fresh = not os.path.isfile(self.path)
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            if fresh:
                writer.writeheader()
            writer.writerow(row)
        shown = [f"{k} {row[k]:.4g}" for k in COLUMNS if row[k] != ""]
        self.say(f"step {step} (episode {row['episode']}): " + ", ".join(shown))

    def close(self) -> None:
        """Nothing held open: each row is appended and closed."""


def _first(values: dict[str, Any], keys: tuple[str, ...]) -> Optional[float]:
    for key in keys:
        if isinstance(values.get(key), (int, float)):
            return float(values[key])
    return None
