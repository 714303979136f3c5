"""Agents from stable-baselines3: continuation takes new hyperparameters and continues the step count; SAC acts on a
continuous mix; checkpoints load weights-only and rebuild the language model for `atheria generate`."""
import io

import numpy as np
import pytest
import torch
from gymnasium import spaces

from atheria.errors import ConfigError
from atheria.families.loading import load_module
from atheria.rl.agents import agent_state, build_agent, restore_agent
from atheria.rl.build import build_env
from atheria.rl.checkpoints import Scheduled, scheduler_checkpoint


def weights_only(obj):
    """`obj` through torch.save and a weights-only load, as a checkpoint on disk is read."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_continuation_takes_new_lr_clip_and_entropy_and_continues_the_steps(rl_cfg, text):
    cfg = rl_cfg()
    algo = build_agent(cfg.rl, build_env(cfg, text, None), cfg.seed)
    algo.learn(6)
    saved = weights_only(agent_state(algo, "ppo", episodes=2))

    new = rl_cfg("rl.lr=1e-4", "rl.clip_range=0.1", "rl.ent_coef=0.05")
    again = build_agent(new.rl, build_env(new, text, None), new.seed)
    restore_agent(again, "ppo", saved, "last.ckpt")
    assert again.num_timesteps == 6
    assert again.learning_rate == 1e-4 and again.lr_schedule(1.0) == 1e-4
    assert again.clip_range(1.0) == 0.1 and again.ent_coef == 0.05
    for name, tensor in algo.policy.state_dict().items():
        assert torch.equal(tensor, again.policy.state_dict()[name]), name
    again.learn(6, reset_num_timesteps=False)
    assert again.num_timesteps == 12
    assert again.policy.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)  # what the update actually used
    assert again.logger.name_to_value["train/clip_range"] == 0.1  # and the clip range it clipped with


def test_an_agent_of_another_algorithm_is_refused_in_one_line(rl_cfg, text):
    cfg = rl_cfg("rl.algo=a2c")
    algo = build_agent(cfg.rl, build_env(cfg, text, None), cfg.seed)
    with pytest.raises(ConfigError, match=r"rl.algo='a2c' cannot continue last.ckpt, which holds a 'ppo' agent"):
        restore_agent(algo, "a2c", {"algo": "ppo", "parameters": {}, "num_timesteps": 3}, "last.ckpt")


def test_sac_acts_on_a_continuous_mix_and_learns(rl_cfg, text):
    cfg = rl_cfg("rl.algo=sac", "rl.batch_size=4")
    env = build_env(cfg, text, None)
    assert isinstance(env.action_space, spaces.Box) and env.action_space.shape == (1,)
    algo = build_agent(cfg.rl, env, cfg.seed)
    algo.learn(6)
    assert algo.num_timesteps == 6 and algo.logger.name_to_value.get("train/actor_loss") is not None
    env.reset(seed=0)
    action, _ = algo.predict(env.reset(seed=0)[0], deterministic=True)
    w_text, w_phi = env.weights_of(action)
    assert 0.0 <= w_phi <= 1.0 and w_text == pytest.approx(1.0 - 0.9 * w_phi)
    _, _, _, _, info = env.step(np.array([0.0], np.float32))
    assert info["weights"] == pytest.approx((0.55, 0.5))  # the middle of the mix: close to MIXED
    saved = weights_only(agent_state(algo, "sac", episodes=2))
    again = build_agent(cfg.rl, build_env(cfg, text, None), cfg.seed)
    restore_agent(again, "sac", saved, "last.ckpt")
    assert again.num_timesteps == 6 and torch.equal(next(iter(again.actor.parameters())),
                                                    next(iter(algo.actor.parameters())))


def test_a_scheduler_checkpoint_rebuilds_the_scheduled_language_model(rl_cfg, text, tmp_path):
    cfg = rl_cfg()
    env = build_env(cfg, text, None)
    env.reset(seed=0)
    for _ in range(3):
        env.step(1)
    algo = build_agent(cfg.rl, env, cfg.seed)
    scheduled = Scheduled(env.best[1], reward=0.5, step=7)
    ckpt = scheduler_checkpoint(7, agent_state(algo, "ppo", 1), env.lm.hparams, scheduled, {"algo": "ppo"})
    path = tmp_path / "last.ckpt"
    torch.save(ckpt, path)
    module, loaded = load_module(path)  # what `atheria generate` does: weights-only, family "lm"
    assert loaded["global_step"] == 7 and loaded["evaluation"] == {"reward": 0.5, "step": 7}
    state = module.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in env.best[1].items())
