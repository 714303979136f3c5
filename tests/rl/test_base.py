"""rl.base: episodes start from a trained LM checkpoint's adapters, and a checkpoint of another model is refused."""
import pytest
import torch

from atheria.errors import ConfigError
from atheria.lm.model import trainable_state
from atheria.rl.build import build_env, load_base
from atheria.storage.layout import Layout


def lm_checkpoint(path, env, shift=0.5):
    """An LMModule-style checkpoint of the env's model with every adapter moved by `shift`."""
    state = {f"model.{k}": v + shift for k, v in trainable_state(env.lm.model).items()}
    torch.save({"global_step": 30, "hyper_parameters": dict(env.lm.hparams), "state_dict": state}, path)
    return {k[len("model."):]: v for k, v in state.items()}


def test_episodes_start_from_the_base_checkpoints_adapters(rl_cfg, text, tmp_path):
    fresh = build_env(rl_cfg(), text, None)
    expected = lm_checkpoint(tmp_path / "base.ckpt", fresh)
    cfg = rl_cfg(f"rl.base={tmp_path / 'base.ckpt'}")
    base = load_base(cfg, Layout(cfg.storage.local, cfg.name))
    assert base.keys() == expected.keys() and all(torch.equal(base[k], expected[k]) for k in base)
    env = build_env(cfg, text, base)
    env.reset(seed=0)
    env.step(0)
    env.reset()
    assert all(torch.equal(v, expected[k]) for k, v in trainable_state(env.lm.model).items())


def test_a_base_of_another_model_is_refused_naming_rl_base(rl_cfg, text, tmp_path):
    lm_checkpoint(tmp_path / "base.ckpt", build_env(rl_cfg(), text, None))
    cfg = rl_cfg(f"rl.base={tmp_path / 'base.ckpt'}", "model.lora_r=8")
    with pytest.raises(ConfigError, match=r"^rl.base='.*base.ckpt' .* holds a .*lora_r=4.*model.lora_r differs"):
        load_base(cfg, Layout(cfg.storage.local, cfg.name))


def test_without_a_base_every_env_starts_from_the_same_seeded_fresh_adapters(rl_cfg, text):
    torch.manual_seed(123)  # whatever the global RNG holds: the training and the evaluation env must agree
    first = trainable_state(build_env(rl_cfg(), text, None).lm.model)
    second = trainable_state(build_env(rl_cfg(), text, None).lm.model)
    torch.manual_seed(42)
    from atheria.families import build_module

    lightning_start = trainable_state(build_module(rl_cfg()).model)  # as train.py model=gpt2_lora seeds it
    assert first.keys() == second.keys() == lightning_start.keys()
    assert all(torch.equal(first[k], second[k]) and torch.equal(first[k], lightning_start[k]) for k in first)
    assert any(k.endswith("lora_A.default.weight") and v.abs().sum() > 0 for k, v in first.items())
