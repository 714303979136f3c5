"""`overhead`: what the framework costs per episode. The same QCA episodes (model, grid, steps, seed) through a
plain PyTorch loop written here and through train.py's Trainer with every default callback (budget, local
checkpoints every save_every, monitor, status, plots, report, progress bar), built in this process the way
atheria.runner builds it.

    python -m bench.overhead [--quick]

The two alternate episode by episode in one process, a, b, a, b: before each Trainer episode a callback plays the
plain loop's episode of the same index (its own law, optimizer and states) and times it apart, so both see the same
moment of a shared machine, whose speed drifts by a third within seconds. Result: seconds per episode of the Trainer
over the plain loop (the plain loop's episodes per second over the Trainer's), the median over repetitions, the first
two episodes excluded as warm-up. Both run at 32-bit precision (on a GPU the framework defaults to 16-mixed, which
this loop does not model) and without held-out evaluations (run.eval_every=0: they are work a user asks for, not
the framework's cost). The plain loop must reproduce the Trainer's per-episode losses exactly.
"""
from __future__ import annotations

import gc
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf

from atheria.families.qca import PHYSICS_KEYS
from atheria.models import build_law
from atheria.qca import LossWeights, Physics, episode_losses, initial_state, rollout
from bench.common import compose, device, median, note, parse_quick, pin_threads, result
from bench.session import train_session

# Three episode lengths, all at the quick preset's cadences (a save every 5 episodes, a sync every 20, a monitor
# report and a live plot every 25, status and progress bar every episode):
# - "": the quick preset's episodes as a user runs them (UNET, grid 32, 50 steps; ~700 ms on one CPU thread); 25
#   timed episodes hold 5 saves, 2 monitor reports and 1 live plot;
# - "short": MLP, grid 32, 30 steps (~25 ms), and "tiny": MLP, grid 16, 10 steps (~7 ms): episodes as short as the
#   quick preset's are on a GPU, where the framework's fixed cost per episode decides how much of the run trains.
VARIANTS = {"": ("preset=quick",),
            "short": ("preset=quick", "model=mlp", "qca.steps=30"),
            "tiny": ("preset=quick", "model=mlp", "qca.grid_size=16", "qca.steps=10")}
QUICK = {"": {"episodes": 27, "repeats": 2}, "short": {"episodes": 102, "repeats": 3},
         "tiny": {"episodes": 102, "repeats": 3}}
FULL = {"": {"episodes": 52, "repeats": 5}, "short": {"episodes": 202, "repeats": 5},
        "tiny": {"episodes": 202, "repeats": 5}}


class PlainLoop:
    """The same episodes written by hand: seeded law, seeded initial states, rollout, loss, AdamW, clipping."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg, self.dev = cfg, device()
        self.q = OmegaConf.to_container(cfg.qca, resolve=True)
        torch.manual_seed(cfg.seed)
        self.law = build_law(cfg.model.arch, cfg.model.d_state, cfg.model.hidden_channels).to(self.dev)
        self.optimizer = torch.optim.AdamW(self.law.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
        self.physics = Physics(**{k: self.q[k] for k in PHYSICS_KEYS})
        self.weights = LossWeights(**self.q["weights"])

    def episode(self, index: int) -> float:
        """Play episode `index` and return its loss."""
        cfg, q = self.cfg, self.q
        psi0 = initial_state(cfg.seed, index, q["batch_size"], q["grid_size"], cfg.model.d_state).to(self.dev)
        psif = rollout(self.law, psi0, self.physics, cfg.seed, index, index)
        loss = episode_losses(psi0, psif, self.weights, q["objective"], q["survival_target"],
                              q["alive_threshold"])["loss"]
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.law.parameters(), cfg.optim.grad_clip)
        self.optimizer.step()
        return loss.item()


class Alternate(Callback):
    """First of all hooks: plays the plain loop's episode, then marks the start of the Trainer's episode."""

    def __init__(self, plain: PlainLoop) -> None:
        self.plain = plain
        self.plain_s: list[float] = []
        self.plain_losses: list[float] = []
        self.marks: list[float] = []
        self.losses: list[float] = []

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        t0 = time.perf_counter()
        self.plain_losses.append(self.plain.episode(int(batch["episode"])))
        self.marks.append(time.perf_counter())
        self.plain_s.append(self.marks[-1] - t0)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.losses.append(float(outputs["loss"]))

    def seconds_per_episode(self) -> tuple[float, float]:
        """(plain, Trainer) mean seconds per episode over episodes 2..n-1 of the plain loop and 1..n-2 of the
        Trainer (a Trainer episode's interval ends after the next plain episode, which is taken out)."""
        plain = self.plain_s[2:]
        trainer = self.marks[-1] - self.marks[1] - sum(plain)
        return sum(plain) / len(plain), trainer / len(plain)


def ratios_of(variant: str, episodes: int, repeats: int, work: Path) -> list[float]:
    """Trainer over plain seconds per episode, one ratio per repetition of the alternating run."""
    ratios = []
    for rep in range(repeats):
        root = work / f"{variant or 'quick'}{rep}"
        cfg = compose(root, *VARIANTS[variant], "run.max_hours=24", "run.eval_every=0",
                      f"run.total_episodes={episodes}", "trainer.precision=32-true")
        gc.collect()
        alternate = Alternate(PlainLoop(cfg))
        train_session(cfg, work / "framework.log", first=alternate)
        # Identical on the CPU; on a GPU, convolutions and reductions round differently from call to call, and the
        # difference grows over the episodes (1e-7 at the first); another episode's loss would differ by percents.
        if len(alternate.losses) != len(alternate.plain_losses) or not all(
                math.isclose(a, b, rel_tol=1e-3) for a, b in zip(alternate.losses, alternate.plain_losses)):
            raise SystemExit(f"the plain loop and the Trainer disagree on the losses: {alternate.plain_losses[:3]}"
                             f" vs {alternate.losses[:3]}; the comparison would not be like for like")
        a, b = alternate.seconds_per_episode()
        ratios.append(b / a)
        note(f"{variant or 'quick'} repetition {rep + 1} ({cfg.model.arch.upper()}, grid {cfg.qca.grid_size}, "
             f"{cfg.qca.steps} steps per episode): plain {a * 1000:.1f} ms/episode, Trainer {b * 1000:.1f} "
             f"ms/episode, ratio {b / a:.3f}; losses equal")
        shutil.rmtree(root, ignore_errors=True)
    return ratios


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Repeat the alternating run for each episode length; report the median ratio of seconds per episode."""
    plan = QUICK if parse_quick(__doc__.splitlines()[0], argv) else FULL
    threads = pin_threads()
    note("the quick preset's cadences; episodes x repetitions: " + ", ".join(
        f"{variant or 'quick'} {p['episodes']} x {p['repeats']}" for variant, p in plan.items())
         + f"; {device()}, {threads} thread(s)")
    with tempfile.TemporaryDirectory(prefix="atheria-bench-overhead-", ignore_cleanup_errors=True) as tmp:
        for variant, p in plan.items():
            ratios = ratios_of(variant, p["episodes"], p["repeats"], Path(tmp))
            name = "overhead" + (f".{variant}" if variant else "")
            result(f"{name}.time_ratio", median(ratios), "x")
            result(f"{name}.time_ratio_max", max(ratios), "x")


if __name__ == "__main__":
    main()
