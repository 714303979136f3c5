"""One session of `task=rl_scheduler`: continue or start the agent, train it within the session budget, save and
mirror, and compare it with every constant action and random actions. The runner has already validated the config,
taken the experiment's lock and resolved the checkpoint to resume from, as for every other task."""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from omegaconf import DictConfig, OmegaConf

from atheria.checks import fraction, is_number, non_negative_int, positive_int, positive_number, require
from atheria.errors import ConfigError
from atheria.families.lm import LM
from atheria.observe.report import report_name
from atheria.resume import Resume
from atheria.rl.names import ALGOS
from atheria.session.kit import build_kit
from atheria.session.outcome import Outcome, SessionState, final_words
from atheria.session.shelf import LAST
from atheria.session.status import utc_iso
from atheria.storage.atomic import write_bytes_atomic
from atheria.storage.layout import Layout
from atheria.storage.paths import is_remote
from atheria.sweeps import mark_budget_spent
from atheria.tasks import launch_command, session_settings, where, write_config

if TYPE_CHECKING:
    from atheria.rl.loop import Scheduler
    from atheria.warmstart import Source


def check(cfg: DictConfig) -> None:
    """The scheduler's keys: the agent, its cadence, the base model, the reward weights. Imports no stable-baselines3
    (seconds), so a bad value is refused at once."""
    require(cfg, "model.family", lambda v: v == LM.name, f"{LM.name}: task=rl_scheduler schedules model=gpt2_lora")
    require(cfg, "init_from", lambda v: v is None, "null (the scheduler's episodes start from rl.base)")
    require(cfg, "rl.algo", lambda v: v in ALGOS, ", ".join(ALGOS))
    for key in ("timesteps", "inner_steps", "max_steps", "n_steps", "batch_size", "n_epochs", "save_freq",
                "eval_freq", "n_eval_episodes"):
        require(cfg, f"rl.{key}", positive_int, "a positive integer")
    require(cfg, "rl.learning_starts", non_negative_int, "an integer >= 0")
    require(cfg, "rl.base", lambda v: v is None or (isinstance(v, str) and (is_remote(v) or Path(v).is_file())),
            "null (the model's fresh LoRA), or an existing LM checkpoint path or URL")
    require(cfg, "rl.lr", positive_number, "a positive number (default 3e-4)")
    require(cfg, "rl.clip_range", positive_number, "a positive number (default 0.2)")
    require(cfg, "rl.ent_coef", lambda v: is_number(v) and v >= 0, "a number >= 0 (default 0.01)")
    require(cfg, "rl.gamma", fraction, "a fraction in (0, 1] (default 0.99)")
    require(cfg, "rl.gae_lambda", lambda v: is_number(v) and 0 <= v <= 1, "a number in [0, 1] (default 0.95)")
    require(cfg, "rl.net_arch", lambda v: OmegaConf.is_list(v) and len(v) > 0 and all(positive_int(x) for x in v),
            "a list of positive layer widths, e.g. [128,128]")
    for term in ("text", "phi"):
        require(cfg, f"rl.reward.{term}", lambda v: is_number(v) and v >= 0, "a number >= 0 (default 1)")
    for scale in ("text_nats", "phi_units"):
        require(cfg, f"rl.reward.{scale}", positive_number, "a positive number: a typical decision's gain")


def describe(cfg: DictConfig) -> str:
    """One line saying what this session trains, how long, and where."""
    m, rl = cfg.model, cfg.rl
    return (f"{cfg.name}: {rl.algo.upper()} scheduler of GPT-2 ({m.pretrained or f'random {m.n_layer} layers'}) + LoRA "
            f"r={m.lora_r} from {rl.base or 'fresh adapters'}, {rl.inner_steps} optimizer steps per decision, "
            f"{rl.max_steps} decisions per episode, {rl.timesteps} steps {where(cfg)}")


def _resumed(resume: Optional[Resume]) -> Optional[dict]:
    """The checkpoint to continue, refused in one line unless it holds a scheduler agent."""
    from atheria.storage.finder import load_checkpoint

    if resume is None:
        return None
    ckpt = load_checkpoint(resume.path)
    if not isinstance(ckpt.get("agent"), dict):
        raise ConfigError(f"ckpt_path={resume.source!r} holds no scheduler agent; accepted: a checkpoint of "
                          "task=rl_scheduler, ckpt_path=null to start fresh, or another name=")
    return ckpt


def run(cfg: DictConfig, local: Layout, remote: Optional[Layout], resume: Optional[Resume],
        source: Optional[Source]) -> Outcome:
    """Train the scheduler for this session and say how it ended; the outcome's objective (for sweeps, minimised) is
    minus the best evaluation reward. `source` is always None here: check() refuses init_from for this task."""
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from atheria.rl.agents import build_agent, restore_agent
    from atheria.rl.build import build_env, load_base, load_text
    from atheria.rl.checkpoints import Scheduled, SchedulerCheckpoints, scheduled_of
    from atheria.rl.loop import EvaluateAndSave, GuardStep, Scheduler
    from atheria.rl.progress import ProgressCSV

    write_config(cfg, local)
    total = cfg.rl.timesteps
    if resume is not None and resume.episode >= total:
        print(f"{cfg.name} is already complete ({resume.episode}/{total} steps); raise rl.timesteps to train further.")
        return Outcome(0)
    if resume:
        print(resume.line)
    ckpt = _resumed(resume)
    print(describe(cfg))
    import torch

    gpus = torch.cuda.device_count()
    if gpus > 1:  # platform.devices / trainer.devices are the Lightning tasks'
        print(f"task=rl_scheduler trains on one of the {gpus} visible GPUs: its agent and the model it fine-tunes "
              "take turns in one process, which DDP cannot split.")
    text, base = load_text(cfg), load_base(cfg, local)
    train_env = build_env(cfg, text, base, first_episode=ckpt["agent"]["episodes"] if ckpt else 0)
    eval_env = DummyVecEnv([lambda: Monitor(build_env(cfg, text, base, evaluation=True))])
    algo = build_agent(cfg.rl, train_env, cfg.seed)
    if ckpt is not None:
        restore_agent(algo, cfg.rl.algo, ckpt["agent"], resume.source)
    algo.set_logger(Logger(None, [ProgressCSV(local.logs, lambda: train_env.episode)]))

    kit = build_kit(session_settings(cfg), local, remote, total)
    checkpoints = SchedulerCheckpoints(kit.shelf, cfg.run.keep_best)
    scheduler = Scheduler(cfg, algo, train_env, eval_env, checkpoints,
                          scheduled_of(ckpt) if ckpt else Scheduled(train_env.base))
    guard = kit.guard
    last = os.path.join(local.checkpoints, LAST)
    try:
        checkpoints.open(algo.num_timesteps)
        algo.learn(total - algo.num_timesteps, callback=[EvaluateAndSave(scheduler), GuardStep(guard, last)],
                   reset_num_timesteps=False, log_interval=1)
        step, reason = algo.num_timesteps, guard.stop_reason or SessionState.COMPLETED
        checkpoints.save_last(scheduler.checkpoint())
        guard.end(step, reason)
        guard.write_status(step, last_checkpoint=last, force=True)
        report = _report(cfg, final_words(reason, step, total, unit="step", signal=guard.signal_name),
                         step >= total, scheduler)
        write_bytes_atomic(os.path.join(local.logs, report_name(cfg.name)), report.encode())
        checkpoints.finish(step)  # the final mirror: the report goes with it
    except Exception as exc:
        guard.end(algo.num_timesteps, SessionState.FAILED, error=type(exc).__name__)
        guard.write_status(algo.num_timesteps, last_checkpoint=last, force=True)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            kit.shelf.mirror_last_good()
        raise
    finally:
        guard.close()
        if kit.mirror:
            kit.mirror.close(timeout=5)
    if reason == SessionState.STOPPED_BUDGET:
        mark_budget_spent()
    _compare(scheduler)
    print(final_words(reason, step, total, unit="step", signal=guard.signal_name))
    print(f"Checkpoints: {local.checkpoints}  Progress: {os.path.join(local.logs, 'progress.csv')}")
    rewards = checkpoints.best.values()
    return Outcome(0, -max(rewards) if rewards else None)


def _comparison(scheduler: Scheduler) -> list[tuple[str, float]]:
    """The agent's latest evaluation reward, then every constant action's and random actions', all on the same
    episodes; empty before the first evaluation."""
    s, b = scheduler.scheduled, scheduler.baselines
    if s.reward is None:
        return []
    rows = [(f"agent (step {s.step})", s.reward)]
    if b:
        rows += [(f"always {name.upper()}", b[name]) for name in b["per_decision"]] + [("random", b["random"])]
    return rows


def _verdict(scheduler: Scheduler) -> list[str]:
    """Whether the agent beats the best constant action, and what a decision changes in the reward's units."""
    s, b = scheduler.scheduled, scheduler.baselines
    if s.reward is None or not b:
        return []
    constant = {name: b[name] for name in b["per_decision"]}
    best = max(constant, key=constant.__getitem__)
    text, phi, w = b["per_decision"]["text"]["ce"], b["per_decision"]["phi"]["shortfall"], scheduler.cfg.rl.reward
    return [f"the agent beats the best constant action ({best.upper()}) by {s.reward - constant[best]:.4f}"
            if s.reward > constant[best] else f"the agent does not beat the best constant action ({best.upper()})",
            f"A decision here: always TEXT changes the probe's cross-entropy by {text:+.4g} nats, always PHI the Φ "
            f"shortfall by {phi:+.4g} (the units of the reward: rl.reward.text_nats={w.text_nats}, "
            f"rl.reward.phi_units={w.phi_units})."]


def _compare(scheduler: Scheduler) -> None:
    """The agent's latest evaluation reward next to every constant action's and random actions' on the same
    episodes, and whether it beats the best constant action."""
    rows, verdict = _comparison(scheduler), _verdict(scheduler)
    if not rows:
        print("No evaluation yet (every rl.eval_freq steps): nothing to compare.")
        return
    n = scheduler.cfg.rl.n_eval_episodes
    figures = ", ".join(f"{label} {value:.4f}" for label, value in rows)
    print(f"Evaluation reward, mean of {n} episodes: {figures}" + (f"; {verdict[0]}." if verdict else "."))
    if verdict:
        print(verdict[1])


def _report(cfg: DictConfig, outcome: str, complete: bool, scheduler: Scheduler) -> str:
    """{name}_REPORT.md of a scheduler session: how it ended, the agent beside every constant action and random
    actions, the files, and the command that continues it."""
    from atheria.rl.evaluation import BASELINES_NAME

    rows, verdict = _comparison(scheduler), _verdict(scheduler)
    lines = [f"# {cfg.name}: RL scheduler report", "", f"Written {utc_iso()}.", "", "## Outcome", "", outcome, "",
             "## The agent beside every constant action", ""]
    if rows:
        lines += [f"Evaluation reward, mean of {cfg.rl.n_eval_episodes} episodes, the same for every policy "
                  "(higher is better):", "", "| policy | reward |", "|---|---|",
                  *[f"| {label} | {value:.4f} |" for label, value in rows], ""]
        lines += [verdict[0][0].upper() + verdict[0][1:] + ". A schedule that does not beat it has learned nothing "
                  "a fixed loss weighting would not give.", "", verdict[1], ""] if verdict else []
    else:
        lines += ["No evaluation yet (every `rl.eval_freq` steps): nothing to compare.", ""]
    lines += ["## Files", "", "- `progress.csv`: a row per rollout and per evaluation",
              f"- `{BASELINES_NAME}`: every constant action's and random actions' evaluation reward",
              "- the checkpoints: `last.ckpt`, the best `rl.keep_best` evaluations, `best-final.ckpt`", "",
              "## How to resume", "", "The run is complete. To train further, raise `rl.timesteps` and run the command "
              "again:" if complete else "Run the same command again; it continues from the newest valid checkpoint:",
              "", f"    {launch_command(cfg)}", ""]
    return "\n".join(lines)
