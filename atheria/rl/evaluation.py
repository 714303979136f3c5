"""Evaluation on the separate environment: the agent's deterministic policy, and the two policies it must beat —
always TEXT, and uniformly random — over the same seeded episodes, through sb3's evaluate_policy."""
from __future__ import annotations

import json
import os
from typing import Any, Optional

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv

from atheria.rl.env import text_action
from atheria.storage.atomic import write_bytes_atomic

BASELINES_NAME = "baselines.json"


class FixedPolicy:
    """Always the same action (TEXT): sb3's PolicyPredictor interface."""

    def __init__(self, action: Any) -> None:
        self.action = action

    def predict(self, obs: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, None]:
        return np.array([self.action] * len(obs)), None


class RandomPolicy:
    """Uniformly random actions from a seeded generator, so every evaluation draws the same ones."""

    def __init__(self, action_space: spaces.Space, seed: int) -> None:
        self.space = action_space
        self.space.seed(seed)

    def predict(self, obs: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, None]:
        return np.array([self.space.sample() for _ in range(len(obs))]), None


def mean_reward(policy: Any, env: VecEnv, episodes: int, seed: int) -> float:
    """Mean return of `policy` over `episodes` episodes, the first reset seeded by `seed` (the same episodes for
    every policy); the environment must be wrapped in a Monitor."""
    env.seed(seed)
    returns, _ = evaluate_policy(policy, env, n_eval_episodes=episodes, deterministic=True,
                                 return_episode_rewards=True)
    return float(np.mean(returns))


def measure_baselines(env: VecEnv, episodes: int, seed: int, logs_dir: str, key: dict[str, Any]) -> dict[str, float]:
    """Mean returns of always-TEXT and of random actions, kept in logs/{name}/baselines.json with `key` (what they
    depend on: the environment, never the agent), so an experiment measures them once."""
    space = env.action_space
    found = {"text": mean_reward(FixedPolicy(text_action(space)), env, episodes, seed),
             "random": mean_reward(RandomPolicy(space, seed), env, episodes, seed)}
    write_bytes_atomic(os.path.join(logs_dir, BASELINES_NAME), json.dumps({"key": key, **found}, indent=1).encode())
    return found


def cached_baselines(logs_dir: str, key: dict[str, Any]) -> Optional[dict[str, float]]:
    """The baselines measured earlier for the same `key`, or None."""
    try:
        with open(os.path.join(logs_dir, BASELINES_NAME)) as f:
            cached = json.load(f)
        return {"text": float(cached["text"]), "random": float(cached["random"])} if cached["key"] == key else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
