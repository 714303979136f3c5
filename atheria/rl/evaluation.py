"""Evaluation on the separate environment: the agent's deterministic policy, and the policies it must beat — every
constant action, and uniformly random ones — over the same seeded episodes, through sb3's evaluate_policy. A
schedule that does not beat the best constant action has learned nothing a fixed loss weighting would not give."""
from __future__ import annotations

import json
import os
from typing import Any, Optional

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv

from atheria.rl.env import constant_actions
from atheria.storage.atomic import write_bytes_atomic

BASELINES_NAME = "baselines.json"


class FixedPolicy:
    """Always the same action: sb3's PolicyPredictor interface."""

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


def mean_reward(policy: Any, env: VecEnv, episodes: int, seed: int,
                changes: Optional[dict[str, list[float]]] = None) -> float:
    """Mean return of `policy` over `episodes` episodes, the first reset seeded by `seed` (the same episodes for
    every policy); the environment must be wrapped in a Monitor. `changes`: lists to which each decision's changes
    of the probe's cross-entropy and Φ shortfall are appended."""
    def note(local: dict[str, Any], _: dict[str, Any]) -> None:
        if changes is not None:
            for key, value in local["info"]["changes"].items():
                changes[key].append(value)

    env.seed(seed)
    returns, _ = evaluate_policy(policy, env, n_eval_episodes=episodes, deterministic=True,
                                 return_episode_rewards=True, callback=note)
    return float(np.mean(returns))


def measure_baselines(env: VecEnv, episodes: int, seed: int, logs_dir: str, key: dict[str, Any]) -> dict[str, Any]:
    """Mean returns of every constant action and of random actions, and what each constant action changes per
    decision (the probe's cross-entropy in nats, the Φ shortfall: a typical decision, to set rl.reward.text_nats
    and phi_units from), kept in logs/{name}/baselines.json with `key` (what they depend on: the environment, never
    the agent), so an experiment measures them once."""
    space = env.action_space
    found: dict[str, Any] = {"per_decision": {}}
    for name, action in constant_actions(space).items():
        changes: dict[str, list[float]] = {"ce": [], "shortfall": []}
        found[name] = mean_reward(FixedPolicy(action), env, episodes, seed, changes)
        found["per_decision"][name] = {k: float(np.mean(v)) for k, v in changes.items()}
    found["random"] = mean_reward(RandomPolicy(space, seed), env, episodes, seed)
    write_bytes_atomic(os.path.join(logs_dir, BASELINES_NAME), json.dumps({"key": key, **found}, indent=1).encode())
    return found


def cached_baselines(logs_dir: str, key: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The baselines measured earlier for the same `key` (and by this version: every constant action), or None."""
    try:
        with open(os.path.join(logs_dir, BASELINES_NAME)) as f:
            cached = json.load(f)
        if cached["key"] != key or "per_decision" not in cached:
            return None
        return {k: v for k, v in cached.items() if k != "key"}
    except (OSError, ValueError, KeyError, TypeError):
        return None
