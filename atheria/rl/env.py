"""SchedulerEnv: a gymnasium environment in which each action decides how the GPT-2 + LoRA model trains next.

An action sets the (text, Φ) weights of the loss, then `inner_steps` real AdamW steps run on training batches; the
reward (atheria/rl/reward.py) is what that changed on a held-out probe batch (the evaluation env measures its own
probe, other held-out text than the training env's). An episode is `max_steps` decisions
from the base adapters with a fresh optimizer, so the agent learns a schedule, not one lucky trajectory. The
reference environment never stepped its optimizer, so its model never changed; here a test checks that it does.

Episodes are deterministic: reset(seed=s) restarts the sequence at `first_episode` with batch order and dropout
seeded by s; each later reset() moves to the next episode, whose batches continue through the corpus. Since that
seeded reset, `best` keeps the adapters the best finished episode ended with: on the evaluation env, the model the
agent's schedule produced, which checkpoints carry for `atheria generate`.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from atheria.data.text import BlockStream
from atheria.lm.model import trainable_state
from atheria.lm.phi import PHI_SCALE, phi_penalty
from atheria.rl.reward import Reading, RewardWeights, changes, reward_terms

# Discrete actions (PPO, A2C): the (text, Φ) loss weights of the next `inner_steps` optimizer steps.
ACTIONS: dict[str, tuple[float, float]] = {"TEXT": (1.0, 0.0), "PHI": (0.1, 1.0), "MIXED": (0.5, 0.5)}


def mix_weights(action: float) -> tuple[float, float]:
    """SAC's continuous action a in [-1, 1]: mix m = (a + 1) / 2 on the line from TEXT (m = 0: weights 1, 0) to PHI
    (m = 1: weights 0.1, 1); m = 0.5 is close to MIXED."""
    m = (float(np.clip(action, -1.0, 1.0)) + 1.0) / 2.0
    return 1.0 - 0.9 * m, m


def constant_actions(space: spaces.Space) -> dict[str, Any]:
    """The constant policies of a scheduler's action space, by name: each of TEXT, PHI and MIXED, or for SAC's
    continuous mix its ends and middle (mix 0: TEXT, 1: PHI, 0.5: weights 0.55, 0.5, named mixed)."""
    if isinstance(space, spaces.Box):
        return {name: np.full(space.shape, a, np.float32) for name, a in (("text", -1.0), ("phi", 1.0),
                                                                          ("mixed", 0.0))}
    return {name.lower(): i for i, name in enumerate(ACTIONS)}


class SchedulerEnv(gym.Env):
    """Observation: Φ / 10, Φ / phi_target, text loss / log(vocab), Φ loss / phi_target, perplexity relative to the
    episode's start, progress through the episode (all clipped to the observation space's bounds)."""

    metadata = {"render_modes": []}

    def __init__(self, lm: nn.Module, base: dict[str, Tensor], train_blocks: Tensor, probe: Tensor, *,
                 batch_size: int, optim: dict[str, Any], weights: RewardWeights, inner_steps: int, max_steps: int,
                 continuous: bool = False, first_episode: int = 0, seed: int = 0) -> None:
        super().__init__()
        self.lm, self.probe, self.weights = lm, probe.to(lm.device), weights
        self.base = {k: v.detach().clone() for k, v in base.items()}
        self.train_blocks, self.batch_size, self.optim_cfg = train_blocks, batch_size, optim
        self.inner_steps, self.max_steps, self.continuous = inner_steps, max_steps, continuous
        self.first_episode, self.episode, self.data_seed = first_episode, first_episode, seed
        self.phi_target = float(lm.hparams.phi_target)
        self.log_vocab = math.log(lm.model.config.vocab_size)
        # phi/10, phi/target, text_loss/log(vocab), phi_loss/target, perplexity/start, progress
        high = np.array([1.0, PHI_SCALE / self.phi_target, 2.0, 1.0, 4.0, 1.0], dtype=np.float32)
        self.observation_space = spaces.Box(0.0, high, dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32) if continuous else spaces.Discrete(len(ACTIONS))
        self.t = 0
        self.optimizer: Optional[torch.optim.Optimizer] = None
        self.start = self.last = Reading(0.0, 0.0, 0.0)
        self.episode_return = 0.0
        self.best: Optional[tuple[float, dict[str, Tensor]]] = None  # (return, adapters) of the best finished episode

    def weights_of(self, action: Any) -> tuple[float, float]:
        """The (text, Φ) loss weights an action stands for."""
        if self.continuous:
            return mix_weights(np.asarray(action).reshape(-1)[0])
        return list(ACTIONS.values())[int(action)]

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None) -> tuple[np.ndarray, dict]:
        """Back to the base adapters with a fresh optimizer; a seed restarts the episode sequence."""
        super().reset(seed=seed)
        if seed is not None:
            self.data_seed, self.episode, self.best = seed, self.first_episode, None
        elif self.optimizer is not None:
            self.episode += 1
        self.lm.model.load_state_dict(self.base, strict=False)
        params = [p for p in self.lm.model.parameters() if p.requires_grad]
        o = self.optim_cfg
        self.optimizer = torch.optim.AdamW(params, lr=o["lr"], betas=tuple(o["betas"]), weight_decay=o["weight_decay"])
        self.t, self.episode_return = 0, 0.0
        self.start = self.last = reading = self._read()
        return self._observe(reading, reading.ce, reading.shortfall), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Train `inner_steps` optimizer steps under the action's loss weights, then measure and reward."""
        w_text, w_phi = self.weights_of(action)
        stream = BlockStream(self.train_blocks, self.batch_size, self.data_seed, 0)
        text_losses, phi_losses = [], []
        for k in range(self.inner_steps):
            step = (self.episode * self.max_steps + self.t) * self.inner_steps + k
            text, shortfall = self._train_step(stream.batch(step).to(self.lm.device), w_text, w_phi, step)
            text_losses.append(text)
            phi_losses.append(shortfall)
        reading = self._read()
        change = changes(self.last, reading)
        terms = reward_terms(change, self.weights)
        self.last = reading
        self.t += 1
        reward, done = float(sum(terms.values())), self.t >= self.max_steps
        self.episode_return += reward
        if done and (self.best is None or self.episode_return > self.best[0]):
            adapters = trainable_state(self.lm.model)
            self.best = (self.episode_return, {k: v.detach().cpu().clone() for k, v in adapters.items()})
        obs = self._observe(reading, float(np.mean(text_losses)), float(np.mean(phi_losses)))
        info = {"terms": terms, "changes": change, "weights": (w_text, w_phi), "phi": reading.phi,
                "perplexity": reading.perplexity}
        return obs, reward, done, False, info

    def _train_step(self, ids: Tensor, w_text: float, w_phi: float, step: int) -> tuple[float, float]:
        """One AdamW step on w_text·CE + w_phi·(Φ shortfall); dropout seeded by the step, the global RNG untouched."""
        assert self.optimizer is not None, "reset() the environment before stepping it"
        devices = [self.lm.device] if self.lm.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.data_seed * 1_000_003 + step)
            out, phi = self.lm(ids)
            shortfall = phi_penalty(phi, self.phi_target)
            loss = w_text * out.loss + w_phi * shortfall
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        clip = self.optim_cfg.get("grad_clip")
        if clip:
            torch.nn.utils.clip_grad_norm_(self.optimizer.param_groups[0]["params"], clip)
        self.optimizer.step()
        return float(out.loss.detach()), float(shortfall.detach())

    @torch.no_grad()
    def _read(self) -> Reading:
        """Φ and cross-entropy of the held-out probe batch, in eval mode (no dropout)."""
        self.lm.eval()
        out, phi = self.lm(self.probe)
        self.lm.train()
        return Reading(float(phi), float(out.loss), float(phi_penalty(phi, self.phi_target)))

    def _observe(self, reading: Reading, text_loss: float, phi_loss: float) -> np.ndarray:
        obs = [reading.phi / PHI_SCALE, reading.phi / self.phi_target, text_loss / self.log_vocab,
               phi_loss / self.phi_target, reading.perplexity / self.start.perplexity, self.t / self.max_steps]
        return np.clip(np.array(obs, dtype=np.float32), 0.0, self.observation_space.high)
