"""Evaluation compares policies on the same seeded episodes; the fixed-TEXT and random baselines are kept per key."""
import pytest
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from atheria.rl.build import build_env
from atheria.rl.env import text_action
from atheria.rl.evaluation import FixedPolicy, cached_baselines, mean_reward, measure_baselines


def test_policies_are_evaluated_on_the_same_seeded_episodes(rl_cfg, text, tmp_path):
    venv = DummyVecEnv([lambda: Monitor(build_env(rl_cfg(), text, None))])
    always_text = FixedPolicy(text_action(venv.action_space))
    first = mean_reward(always_text, venv, 2, seed=7)
    assert mean_reward(always_text, venv, 2, seed=7) == first

    env, returns = venv.envs[0].unwrapped, []
    for seed in (7, None):  # by hand: the seeded episode and the one after it
        env.reset(seed=seed)
        returns.append(sum(env.step(text_action(env.action_space))[1] for _ in range(env.max_steps)))
    assert first == pytest.approx(sum(returns) / 2, abs=1e-6)  # sb3's Monitor rounds returns to 6 decimals

    key = {"rl": {"max_steps": 3}}
    found = measure_baselines(venv, 2, 7, str(tmp_path), key)
    assert found["text"] == pytest.approx(first) and found["random"] != found["text"]
    assert cached_baselines(str(tmp_path), key) == found and cached_baselines(str(tmp_path), {"other": 1}) is None
