"""A tiny scheduler config over a generated corpus, its text, and environments built from it (in-process)."""
from __future__ import annotations

import pytest

from tests.helpers import compose, write_corpus

# A random 2-layer GPT-2 of width 8 (Φ: 8 features, at least 80 tokens), batches of 5 blocks of 16 tokens, 3
# decisions of 1 optimizer step per episode.
RL_TINY = ("platform=local", "task=rl_scheduler", "model.pretrained=null", "model.n_embd=8", "model.lora_r=4",
           "data.block_size=16", "data.batch_size=5", "optim.lr=5e-3", "rl.inner_steps=1", "rl.max_steps=3",
           "rl.n_steps=6", "rl.batch_size=6", "rl.n_epochs=1", "rl.n_eval_episodes=1", "rl.net_arch=[16]",
           "rl.learning_starts=2")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture
def rl_cfg(tmp_path, corpus):
    """compose(*overrides): the tiny scheduler config, files under tmp_path/out."""
    return lambda *overrides: compose(tmp_path / "out", f"data.path={corpus}", *overrides, base=RL_TINY)


@pytest.fixture(scope="session")
def text(tmp_path_factory, corpus):
    """The tiny config's training blocks and probe batch (tokenised once)."""
    from atheria.rl.build import load_text

    return load_text(compose(tmp_path_factory.mktemp("unused"), f"data.path={corpus}", base=RL_TINY))
