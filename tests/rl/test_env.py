"""The scheduler's environment: a valid gymnasium env whose actions really train the model, rewarded term by term."""
import math

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from atheria.lm.model import trainable_state
from atheria.rl.build import build_env
from atheria.rl.env import ACTIONS, mix_weights
from atheria.rl.reward import Reading, RewardWeights, reward_terms


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_the_env_passes_gymnasiums_checker(rl_cfg, text, algo):
    env = build_env(rl_cfg(f"rl.algo={algo}"), text, None)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs) and obs[-1] == 0.0  # progress starts at 0


def test_an_action_trains_the_adapters_and_reset_restores_the_base(rl_cfg, text):
    env = build_env(rl_cfg(), text, None)
    env.reset(seed=0)
    before = {k: v.clone() for k, v in trainable_state(env.lm.model).items()}
    for action in range(len(ACTIONS)):
        env.step(action)
        after = trainable_state(env.lm.model)
        assert any(not torch.equal(before[k], after[k]) for k in before), list(ACTIONS)[action]
        before = {k: v.clone() for k, v in after.items()}
    env.reset()
    assert all(torch.equal(env.base[k], v) for k, v in trainable_state(env.lm.model).items())


def test_actions_set_the_loss_weights_and_the_episode_ends_after_max_steps(rl_cfg, text):
    env = build_env(rl_cfg(), text, None)
    env.reset(seed=0)
    infos, done = [], False
    for action in (1, 2, 0):
        assert not done
        obs, _, done, truncated, info = env.step(action)
        infos.append(info)
    assert done and not truncated and obs[-1] == 1.0
    assert [i["weights"] for i in infos] == [ACTIONS["PHI"], ACTIONS["MIXED"], ACTIONS["TEXT"]]
    assert mix_weights(-1.0) == ACTIONS["TEXT"] and mix_weights(1.0) == pytest.approx(ACTIONS["PHI"])


def test_the_reward_is_the_sum_of_the_documented_terms(rl_cfg, text):
    w = RewardWeights(alpha=1.0, beta=0.5, gamma=0.1, delta=0.2)
    terms = reward_terms(Reading(phi=2.0, perplexity=100.0), Reading(phi=3.0, perplexity=80.0), cost=0.25, w=w)
    assert terms == pytest.approx({"c": 1.0 * 0.1, "phi": 0.5 * 1.0, "perplexity": 0.1 * 0.2, "cost": -0.2 * 0.25})
    # No constant bonus: a decision that changes nothing and costs nothing earns exactly 0.
    assert sum(reward_terms(Reading(4.0, 50.0), Reading(4.0, 50.0), 0.0, w).values()) == 0.0

    env = build_env(rl_cfg("rl.reward.alpha=2", "rl.reward.delta=1"), text, None)
    env.reset(seed=0)
    before = env.last
    _, reward, _, _, info = env.step(1)  # PHI: Φ weight 1, so its cost is 1 / max_steps
    after = Reading(info["phi"], info["perplexity"])
    expected = reward_terms(before, after, 1.0 / 3, RewardWeights(alpha=2.0, beta=0.5, gamma=0.1, delta=1.0))
    assert info["terms"] == pytest.approx(expected) and reward == pytest.approx(sum(expected.values()))
    assert math.isclose(expected["cost"], -1.0 / 3)


def test_episodes_are_deterministic_from_a_seed_and_move_on_through_the_text(rl_cfg, text):
    env = build_env(rl_cfg(), text, None)

    def episode(seed=None):
        env.reset(seed=seed)
        return [env.step(0)[1] for _ in range(3)]

    first = episode(seed=5)
    second = episode()
    assert env.episode == 1 and second != first and np.isfinite(first + second).all()
    assert env.best is not None and env.best[0] == pytest.approx(max(sum(first), sum(second)))
    assert episode(seed=5) == first and env.episode == 0
    assert env.best[0] == pytest.approx(sum(first))  # a seeded reset starts a new sequence: best of it only
