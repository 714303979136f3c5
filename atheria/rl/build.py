"""From a config to the scheduler's environments: the GPT-2 + LoRA model, its base adapters (`rl.base`), the text."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from atheria.errors import ConfigError
from atheria.lm.model import trainable_state
from atheria.resume import check_same_law, fetch_checkpoint, law_identity
from atheria.rl.agents import CONTINUOUS
from atheria.rl.checkpoints import adapters_of
from atheria.rl.env import SchedulerEnv
from atheria.rl.reward import RewardWeights
from atheria.storage.finder import CorruptCheckpoint, load_checkpoint
from atheria.storage.layout import Layout

PROBE_BATCHES = 2  # held-out blocks measured after every decision: this many training batches' worth


@dataclass
class Text:
    """Token blocks for training, the held-out probe batch the training env's decisions are rewarded on, and the
    evaluation env's own probe: other held-out blocks, so that the agent is evaluated, and its checkpoints chosen,
    on text its rewards never saw."""

    train: Tensor
    probe: Tensor
    evaluation: Tensor


def load_text(cfg: DictConfig) -> Text:
    """The configured text (data.*) as training blocks and two fixed, disjoint held-out probe batches."""
    from atheria.families import build_datamodule

    data = build_datamodule(cfg)
    data.setup("fit")
    n, held_out = PROBE_BATCHES * cfg.data.batch_size, data.val_blocks
    if len(held_out) < 2 * n:
        raise ConfigError(f"data.path={cfg.data.path!r} gives {len(held_out)} held-out blocks of data.block_size="
                          f"{cfg.data.block_size} tokens; the scheduler needs {2 * n} ({PROBE_BATCHES} batches of "
                          "data.batch_size for the reward's probe, as many for evaluation); accepted: more text, a "
                          "larger data.val_fraction, or smaller blocks or batches")
    return Text(data.train_blocks, held_out[:n], held_out[n:2 * n])


def load_base(cfg: DictConfig, local: Layout) -> dict[str, Tensor] | None:
    """The adapters of `rl.base` (an LM checkpoint path or URL, fetched and loaded without executing pickled code,
    and refused unless it is a checkpoint of this model), or None for the model config's fresh LoRA."""
    source = cfg.rl.base
    if source is None:
        return None
    accepted = "accepted: a checkpoint of model=gpt2_lora with this run's model.* settings, or null"
    path = fetch_checkpoint(source, local, "rl.base", "base", accepted)
    try:
        state = load_checkpoint(path).get("state_dict")
    except CorruptCheckpoint as exc:
        raise ConfigError(f"rl.base={source!r} is not a loadable checkpoint ({exc}); {accepted}") from exc
    check_same_law(source, path, law_identity(cfg), source_key="rl.base")
    adapters = adapters_of(state or {})
    if not adapters:
        raise ConfigError(f"rl.base={source!r} holds no LoRA adapters; {accepted}")
    return adapters


def build_env(cfg: DictConfig, text: Text, base: dict[str, Tensor] | None, first_episode: int = 0,
              evaluation: bool = False) -> SchedulerEnv:
    """A SchedulerEnv over its own copy of the model (the training and the evaluation env never share weights),
    starting every episode from `base` (None: the model's fresh adapters, seeded by `seed`, so the training env, the
    evaluation env and every later session start from the same ones, those `model=gpt2_lora` starts from), measured
    on the training probe or, for `evaluation`, on the evaluation probe."""
    from atheria.families import build_module

    with torch.random.fork_rng():  # fresh adapters seeded as a Lightning run seeds them: the same in every env
        torch.manual_seed(cfg.seed)
        lm = build_module(cfg)
    lm = lm.to("cuda" if torch.cuda.is_available() else "cpu")
    if base is not None:
        lm.model.load_state_dict(base, strict=False)
    rl, optim = cfg.rl, OmegaConf.to_container(cfg.optim, resolve=True)
    probe = text.evaluation if evaluation else text.probe
    return SchedulerEnv(lm, trainable_state(lm.model), text.train, probe, batch_size=cfg.data.batch_size,
                        optim=optim, weights=RewardWeights(**rl.reward), inner_steps=rl.inner_steps,
                        max_steps=rl.max_steps, continuous=rl.algo in CONTINUOUS, first_episode=first_episode,
                        seed=cfg.seed)

