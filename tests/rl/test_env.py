"""The scheduler's environment: a valid gymnasium env whose actions really train the model, rewarded term by term."""
import math

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from atheria.lm.model import trainable_state
from atheria.rl.build import build_env
from atheria.rl.env import ACTIONS, mix_weights
from atheria.rl.reward import Reading, RewardWeights, changes, reward_terms


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


def test_the_reward_is_each_objectives_gain_in_units_of_a_typical_decision(rl_cfg, text):
    w = RewardWeights(text=1.0, phi=2.0, text_nats=0.01, phi_units=0.5)
    before, after = Reading(phi=2.0, ce=10.0, shortfall=4.0), Reading(phi=3.0, ce=9.98, shortfall=3.0)
    assert reward_terms(changes(before, after), w) == pytest.approx({"text": 2.0, "phi": 4.0})
    # No constant bonus and no cost: a decision that changes nothing earns exactly 0, whatever its action.
    assert sum(reward_terms(changes(before, before), w).values()) == 0.0
    # Φ above its target earns nothing more; a text loss rising costs.
    above = Reading(phi=7.0, ce=10.01, shortfall=0.0)
    assert reward_terms(changes(Reading(phi=6.5, ce=10.0, shortfall=0.0), above), w) == pytest.approx({"text": -1.0,
                                                                                                  "phi": 0.0})

    env = build_env(rl_cfg("rl.reward.phi=2", "rl.reward.text_nats=0.05"), text, None)
    env.reset(seed=0)
    first = env.last
    assert first.shortfall == pytest.approx(max(0.0, env.phi_target - first.phi))
    assert first.perplexity == pytest.approx(math.exp(first.ce))
    _, reward, _, _, info = env.step(1)
    expected = {"text": -info["changes"]["ce"] / 0.05, "phi": -2.0 * info["changes"]["shortfall"] / 0.25}
    assert info["terms"] == pytest.approx(expected) and reward == pytest.approx(sum(expected.values()))
    assert env.last.ce - first.ce == pytest.approx(info["changes"]["ce"])


def test_the_evaluation_env_measures_other_held_out_text_than_the_rewards_probe(rl_cfg, text):
    assert text.probe.shape == text.evaluation.shape
    rows = {tuple(r) for r in text.probe.tolist()}
    assert not rows & {tuple(r) for r in text.evaluation.tolist()}  # disjoint blocks
    training, evaluation = build_env(rl_cfg(), text, None), build_env(rl_cfg(), text, None, evaluation=True)
    assert torch.equal(training.probe.cpu(), text.probe) and torch.equal(evaluation.probe.cpu(), text.evaluation)
    training.reset(seed=0)
    evaluation.reset(seed=0)
    assert training.last.ce != evaluation.last.ce  # the same base adapters, read on other text


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
