"""The scheduler inside sb3's training loop: evaluation, checkpoints and the session's end as thin sb3 callbacks over
the framework-neutral cores (SessionGuard, Shelf via SchedulerCheckpoints)."""
from __future__ import annotations

import time
from typing import Any

from omegaconf import DictConfig, OmegaConf
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from atheria.rl.agents import agent_state
from atheria.rl.checkpoints import Scheduled, SchedulerCheckpoints, scheduler_checkpoint
from atheria.rl.env import SchedulerEnv
from atheria.rl.evaluation import cached_baselines, mean_reward, measure_baselines
from atheria.session.guard import SessionGuard

EVAL_SEED_OFFSET = 1  # evaluation episodes use seed + 1: other batches than the training env's first episodes


class Scheduler:
    """One session's scheduler: the agent, its training env, the separate evaluation env, the model the agent's
    schedule produced (`scheduled`), the fixed-TEXT and random baselines, and the checkpoints."""

    def __init__(self, cfg: DictConfig, algo: BaseAlgorithm, train_env: SchedulerEnv, eval_env: VecEnv,
                 checkpoints: SchedulerCheckpoints, scheduled: Scheduled) -> None:
        self.cfg, self.algo, self.train_env, self.eval_env = cfg, algo, train_env, eval_env
        self.checkpoints, self.scheduled = checkpoints, scheduled
        self.baselines = cached_baselines(checkpoints.shelf.local.logs, self.baseline_key())

    def checkpoint(self) -> dict[str, Any]:
        """The checkpoint dict of the agent and the scheduled model now."""
        agent = agent_state(self.algo, self.cfg.rl.algo, self.train_env.episode)
        return scheduler_checkpoint(self.algo.num_timesteps, agent, self.train_env.lm.hparams, self.scheduled,
                                    OmegaConf.to_container(self.cfg.rl, resolve=True))

    def evaluate(self) -> float:
        """The agent's mean reward over `rl.n_eval_episodes` deterministic episodes of the evaluation env (and, the
        first time, the baselines' over the same episodes); keeps the best episode's model as the scheduled one."""
        rl, seed = self.cfg.rl, self.cfg.seed + EVAL_SEED_OFFSET
        reward = mean_reward(self.algo, self.eval_env, rl.n_eval_episodes, seed)
        env: SchedulerEnv = self.eval_env.envs[0].unwrapped
        assert env.best is not None, "an evaluation finishes at least one episode"
        self.scheduled = Scheduled(env.best[1], reward, int(self.algo.num_timesteps))
        if self.baselines is None:
            self.baselines = measure_baselines(self.eval_env, rl.n_eval_episodes, seed,
                                               self.checkpoints.shelf.local.logs, self.baseline_key())
        return reward

    def baseline_key(self) -> dict[str, Any]:
        """What the baselines' rewards depend on: the environment's settings, never the agent's."""
        keep = ("base", "inner_steps", "max_steps", "n_eval_episodes", "reward")
        rl = {k: v for k, v in OmegaConf.to_container(self.cfg.rl, resolve=True).items() if k in keep}
        return {"rl": rl, "seed": self.cfg.seed, **OmegaConf.to_container(
            OmegaConf.masked_copy(self.cfg, ["model", "data", "optim"]), resolve=True)}


class EvaluateAndSave(BaseCallback):
    """Every `rl.eval_freq` steps: evaluate, log eval/mean_reward, keep the checkpoint if among the best, and save
    last.ckpt; every `rl.save_freq` steps in between: save last.ckpt."""

    def __init__(self, scheduler: Scheduler) -> None:
        super().__init__()
        self.scheduler = scheduler

    def _on_step(self) -> bool:
        rl, step = self.scheduler.cfg.rl, self.num_timesteps
        if step % rl.eval_freq == 0:
            reward = self.scheduler.evaluate()
            self.logger.record("eval/mean_reward", reward)
            self.logger.dump(step)
            ckpt = self.scheduler.checkpoint()
            self.scheduler.checkpoints.offer_best(ckpt, reward)
            self.scheduler.checkpoints.save_last(ckpt)
        elif step % rl.save_freq == 0:
            self.scheduler.checkpoints.save_last(self.scheduler.checkpoint())
        return True


class GuardStep(BaseCallback):
    """Ends sb3's loop for the SessionGuard (budget, signals, `atheria stop`), timing each decision for the budget
    clock, evaluations and updates included; it must come last among the callbacks so their time counts."""

    def __init__(self, guard: SessionGuard, last_checkpoint: str) -> None:
        super().__init__()
        self.guard, self.last_checkpoint = guard, last_checkpoint
        self._t0 = 0.0

    def _on_training_start(self) -> None:
        self.guard.begin(self.num_timesteps)
        self.guard.write_status(self.num_timesteps, last_checkpoint=self.last_checkpoint, force=True)
        self._t0 = time.monotonic()

    def _on_step(self) -> bool:
        now = time.monotonic()
        self.guard.clock.note_episode(now - self._t0)
        self._t0 = now
        reason = self.guard.reason(self.num_timesteps, None)  # sb3 ends the loop itself at rl.timesteps
        self.guard.stop_reason = reason
        self.guard.write_status(self.num_timesteps, last_checkpoint=self.last_checkpoint, force=reason is not None)
        return reason is None
