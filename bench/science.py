"""`science`: does each QCA law learn something a trivial law does not? Each architecture trains a short run on the
quick preset's physics (grid 32, 50 steps per episode, the default objective) through train.py's own Trainer, is
evaluated on held-out episodes (a seed stream no training episode plays) and is compared with the better of the two
trivial laws, the zero law and the best uniform law psi <- c psi (c fitted on those same episodes), scored there
under the same objective.

    python -m bench.science [--quick]

Result per architecture: science.qca.<arch>.gain_over_trivial = (L_trivial - L_trained) / |L_trivial|, the
share of the best trivial law's held-out loss the trained law removes (0: no better than doing nothing). Goal:
above 0.05 for every architecture. The short runs use a learning rate of 1e-3 (the default 1e-4 suits runs of
thousands of episodes); the terms of the trained law's held-out loss are printed beside the trivial law's, and what
its final field looks like: its contrast (std / mean of the density) and its correlation with the grid's lowest
mode, sin(pi x / (n + 1)) sin(pi y / (n + 1)), one smooth blob centred on the grid.
"""
from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import torch
from omegaconf import DictConfig

from atheria.families.qca import PHYSICS_KEYS
from atheria.models import ARCHITECTURES, build_law
from atheria.qca import Physics, density, initial_state, rollout
from bench.common import compose, device, note, parse_quick, pin_threads, result
from bench.session import train_session
from tests.helpers import load

# Episodes per architecture: under two minutes each on one CPU thread (a UNET episode costs ten of DEEP_QCA's).
QUICK = {"deep_qca": 300, "mlp": 300, "snn_unet": 120, "unet": 60}
FULL = {arch: 2000 for arch in ARCHITECTURES}
LR = 1e-3
HELD_OUT = 8


def shape(rho: torch.Tensor) -> tuple[float, float]:
    """A density field's contrast (std / mean) and its correlation with the grid's lowest mode."""
    n = rho.shape[0]
    wave = torch.sin(math.pi * torch.arange(1, n + 1) / (n + 1))
    a, b = rho - rho.mean(), torch.outer(wave, wave) - torch.outer(wave, wave).mean()
    return float(rho.std() / rho.mean()), float((a * b).sum() / (a.norm() * b.norm()))


@torch.no_grad()
def fields(cfg: DictConfig) -> tuple[tuple[float, float], tuple[float, float]]:
    """shape() of the first held-out episode's initial density (what the trivial laws keep) and of the trained
    law's final density."""
    m, q = cfg.model, cfg.qca
    law = build_law(m.arch, m.d_state, m.hidden_channels)
    state = load(Path(cfg.storage.local) / "checkpoints" / cfg.name / "last.ckpt")["state_dict"]
    law.load_state_dict({k.removeprefix("law."): v for k, v in state.items() if k.startswith("law.")})
    psi0 = initial_state(cfg.seed, 0, 1, q.grid_size, m.d_state, held_out=True)
    final = density(rollout(law, psi0, Physics(**{k: q[k] for k in PHYSICS_KEYS})))[0]
    return shape(density(psi0)[0]), shape(final)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Train each architecture briefly, then read its held-out figures and the baselines from training_log.json."""
    episodes = QUICK if parse_quick(__doc__.splitlines()[0], argv) else FULL
    threads = pin_threads()
    note(f"preset=quick physics (grid 32, 50 steps), objective bounded, lr {LR}, {HELD_OUT} held-out episodes, "
         f"{device()}, {threads} thread(s)")
    with tempfile.TemporaryDirectory(prefix="atheria-bench-science-", ignore_cleanup_errors=True) as tmp:
        for arch in ARCHITECTURES:
            n = episodes[arch]
            cfg = compose(Path(tmp) / arch, "preset=quick", f"model={arch}", f"run.total_episodes={n}",
                          f"run.save_every={n}", f"run.eval_every={n}", f"run.eval_episodes={HELD_OUT}",
                          f"optim.lr={LR}", "run.monitor_every=0", "run.plot_every=0", "trainer.precision=32-true")
            timer = train_session(cfg, Path(tmp) / f"{arch}.log")
            log = json.loads((Path(cfg.storage.local) / "logs" / cfg.name / "training_log.json").read_text())
            base, final = log["baselines"], log["metrics"]["final"]
            terms = ", ".join(f"{t} {final[f'val/{t}']:.3f}" for t in ("survival", "symmetry", "complexity"))
            seconds = sum(timer.intervals()) / max(1, len(timer.intervals()))
            (c0, b0), (c1, b1) = fields(cfg)
            note(f"{arch}: {n} episodes ({seconds:.2f} s each); held-out loss {base['model_last']:.4f} ({terms}) "
                 f"against {base['best']} {base['best_score']:.4f}, zero law {base['scores']['zero law']:.4f}; "
                 f"field contrast {c0:.2f} -> {c1:.2f}, correlation with the lowest mode {b0:.2f} -> {b1:.2f}")
            result(f"science.qca.{arch}.gain_over_trivial", base["model_last_gain"], "share")


if __name__ == "__main__":
    main()
