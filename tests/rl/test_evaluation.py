"""Evaluation compares policies on the same seeded episodes; every constant action and random actions are the
baselines, kept per key with what each constant action changes per decision."""
import pytest
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from atheria.rl.build import build_env
from atheria.rl.env import constant_actions
from atheria.rl.evaluation import FixedPolicy, cached_baselines, mean_reward, measure_baselines


def test_policies_are_evaluated_on_the_same_seeded_episodes(rl_cfg, text, tmp_path):
    venv = DummyVecEnv([lambda: Monitor(build_env(rl_cfg(), text, None))])
    always_text = FixedPolicy(constant_actions(venv.action_space)["text"])
    first = mean_reward(always_text, venv, 2, seed=7)
    assert mean_reward(always_text, venv, 2, seed=7) == first

    env, returns = venv.envs[0].unwrapped, []
    for seed in (7, None):  # by hand: the seeded episode and the one after it
        env.reset(seed=seed)
        returns.append(sum(env.step(constant_actions(env.action_space)["text"])[1] for _ in range(env.max_steps)))
    assert first == pytest.approx(sum(returns) / 2, abs=1e-6)  # sb3's Monitor rounds returns to 6 decimals

    key = {"rl": {"max_steps": 3}}
    found = measure_baselines(venv, 2, 7, str(tmp_path), key)
    assert set(found) == {"text", "phi", "mixed", "random", "per_decision"} and set(found["per_decision"]) == {
        "text", "phi", "mixed"}
    assert found["text"] == pytest.approx(first) and len({found[k] for k in ("text", "phi", "mixed", "random")}) == 4
    w = env.weights  # a constant action's return is its mean changes per decision, weighted, times the decisions
    for name in ("text", "phi", "mixed"):
        change = found["per_decision"][name]
        per_decision = -w.text * change["ce"] / w.text_nats - w.phi * change["shortfall"] / w.phi_units
        assert found[name] == pytest.approx(env.max_steps * per_decision, abs=1e-4)
    assert cached_baselines(str(tmp_path), key) == found and cached_baselines(str(tmp_path), {"other": 1}) is None
