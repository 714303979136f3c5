"""The scheduler's agents: stable-baselines3's PPO, A2C or SAC, built from `rl.*`, saved as plain tensors and restored.

Continuation builds a NEW algorithm from the current config, so a changed learning rate, clip range or entropy
coefficient goes through the library's own schedules (assigning attributes after sb3's `.load` does not: it keeps
the loaded schedules), then loads the saved network and optimizer weights and the step count. sb3's own `.load`
is never used: its zip files unpickle code with cloudpickle, and Atheria loads checkpoints weights-only.
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
from omegaconf import DictConfig
from stable_baselines3 import A2C, PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm

from atheria.errors import ConfigError

CONTINUOUS = ("sac",)  # acts on a continuous text/Φ mix; the others choose TEXT, PHI or MIXED


def build_agent(rl: DictConfig, env: gym.Env, seed: int) -> BaseAlgorithm:
    """A fresh `rl.algo` agent on `env` with the configured hyperparameters (MlpPolicy, rl.net_arch for the policy
    and the value function or critic), on the CPU: its networks are small, the language model is the heavy part."""
    common: dict[str, Any] = dict(learning_rate=rl.lr, gamma=rl.gamma, seed=seed, device="cpu", verbose=0,
                                  policy_kwargs={"net_arch": list(rl.net_arch)})
    if rl.algo == "ppo":
        return PPO("MlpPolicy", env, n_steps=rl.n_steps, batch_size=rl.batch_size, n_epochs=rl.n_epochs,
                   gae_lambda=rl.gae_lambda, clip_range=rl.clip_range, ent_coef=rl.ent_coef, **common)
    if rl.algo == "a2c":
        return A2C("MlpPolicy", env, n_steps=rl.n_steps, gae_lambda=rl.gae_lambda, ent_coef=rl.ent_coef, **common)
    return SAC("MlpPolicy", env, batch_size=rl.batch_size, ent_coef=rl.ent_coef, learning_starts=rl.learning_starts,
               buffer_size=min(1_000_000, rl.timesteps), **common)


def agent_state(algo: BaseAlgorithm, name: str, episodes: int) -> dict[str, Any]:
    """What a checkpoint keeps of an agent: its algorithm, networks and optimizers (plain state dicts), step count,
    and how many training episodes it has started (so the next session continues through the text)."""
    return {"algo": name, "num_timesteps": int(algo.num_timesteps), "episodes": int(episodes),
            "parameters": algo.get_parameters()}


def restore_agent(algo: BaseAlgorithm, name: str, state: dict[str, Any], source: str) -> None:
    """Load a saved agent's weights, optimizer states and step count into `algo`, built from the current config."""
    if state.get("algo") != name:
        raise ConfigError(f"rl.algo={name!r} cannot continue {source}, which holds a {state.get('algo')!r} agent; "
                          f"accepted: rl.algo={state.get('algo')}, ckpt_path=null to start fresh, or another name=")
    algo.set_parameters(state["parameters"], exact_match=True)
    algo.num_timesteps = int(state["num_timesteps"])
