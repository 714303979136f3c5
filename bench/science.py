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

The language model: a small random GPT-2 (2 layers, width 128; no hub) fine-tuned with LoRA on the text of the
GPL-3 licence (Debian's and Ubuntu's /usr/share/common-licenses/GPL-3, the last 20% held out), once with the Φ
penalty (lambda_phi 1, the default) and once without (lambda_phi 0), from the same seed, beside the best unigram
model (token frequencies of the training text, add-k smoothed over GPT-2's vocabulary, k the best on the held-out
text) scored on the same held-out tokens:
science.lm.perplexity.{untrained,phi,no_phi,unigram} and science.lm.phi.{untrained,phi,no_phi}, the held-out
perplexity and Φ at the last validation (untrained: the one before training). And science.lm.noise_phi.{uncorrected,
corrected}: Φ of pure noise at 320 tokens (the fewest a batch may hold at 32 features), without and with the
shuffled-pairs null subtracted.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Optional, Sequence

import torch
from omegaconf import DictConfig

from atheria.families import build_datamodule
from atheria.families.qca import PHYSICS_KEYS
from atheria.models import ARCHITECTURES, build_law
from atheria.observe.history import read_history
from atheria.qca import Physics, density, initial_state, rollout
from bench.common import compose, device, note, parse_quick, pin_threads, result
from bench.session import train_session
from tests.helpers import load

# Episodes per architecture: under two minutes each on one CPU thread (a UNET episode costs ten of DEEP_QCA's).
QUICK = {"deep_qca": 300, "mlp": 300, "snn_unet": 120, "unet": 60}
FULL = {arch: 2000 for arch in ARCHITECTURES}
LR = 1e-3
HELD_OUT = 8
TEXT = "/usr/share/common-licenses/GPL-3"
LM_STEPS = {"quick": 80, "full": 400}
LM = ("model=gpt2_lora", "model.pretrained=null", "model.n_embd=128", "model.n_head=4", f"data.path={TEXT}",
      "data.val_fraction=0.2", "data.block_size=64", "data.batch_size=8", "optim.lr=2e-3")


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


def unigram_perplexity(cfg: DictConfig) -> tuple[float, float]:
    """The best add-k unigram model of the training tokens on the held-out tokens a validation scores (every token
    of its full batches but each block's first), and its k."""
    data = build_datamodule(cfg)
    data.setup("fit")
    vocab = len(data.tokenizer)
    counts = torch.bincount(data.train_blocks.flatten(), minlength=vocab).double()
    batches = min(len(data.val_blocks) // cfg.data.batch_size, cfg.trainer.limit_val_batches)
    targets = data.val_blocks[: batches * cfg.data.batch_size, 1:].flatten()

    def perplexity(k: float) -> float:
        log_p = torch.log((counts[targets] + k) / (counts.sum() + k * vocab))
        return float(torch.exp(-log_p.mean()))

    k = min((10.0 ** e for e in torch.arange(-4.0, 1.01, 0.25).tolist()), key=perplexity)
    return perplexity(k), k


def validations(cfg: DictConfig) -> dict[int, tuple[float, float]]:
    """A run's held-out (perplexity, Φ) by episode, from its metrics.csv."""
    history = read_history(str(Path(cfg.storage.local) / "logs" / cfg.name))
    return {episode: (row["val/perplexity"], row["val/phi"]) for episode, row in history.items()
            if "val/perplexity" in row}


def noise_phi() -> None:
    """Φ of pure noise (width 64: 32 features) at several token counts, with and without the shuffled-pairs null."""
    from atheria.lm.phi import PhiMeter, gaussian_mutual_information, phi_scale

    meter, g = PhiMeter(64), torch.Generator().manual_seed(0)
    half = meter.projection.shape[1] // 2
    rows = []
    for tokens in (16, 64, 128, 320, 512, 4096):
        noise = [torch.randn(1, tokens, 64, generator=g) for _ in range(20)]
        features = [x[0] @ meter.projection for x in noise]
        raw = sum(float(phi_scale(gaussian_mutual_information(z[:, :half], z[:, half:]), half))
                  for z in features) / len(noise)
        corrected = sum(float(meter(x)) for x in noise) / len(noise) if tokens >= meter.min_tokens else None
        rows.append(f"{tokens}: {raw:.3f}" + (f" -> {corrected:.3f}" if corrected is not None else " (refused)"))
        if tokens == meter.min_tokens:
            result("science.lm.noise_phi.uncorrected", raw, "phi")
            result("science.lm.noise_phi.corrected", corrected or 0.0, "phi")
    note("lm: Φ of pure noise by tokens per batch, mean of 20 draws, uncorrected -> less the shuffled-pairs null: "
         + "; ".join(rows))


def language_model(tmp: Path, quick: bool) -> None:
    """Fine-tune with and without the Φ penalty, and score the unigram model on the same held-out tokens."""
    from atheria.runner import train

    if not os.path.isfile(TEXT):
        raise SystemExit(f"science.lm trains on {TEXT} (Debian's and Ubuntu's base-files), which this machine "
                         "lacks")
    steps = LM_STEPS["quick" if quick else "full"]
    runs = {}
    for row, lam in (("phi", 1.0), ("no_phi", 0.0)):
        cfg = compose(tmp / f"lm_{row}", *LM, f"model.lambda_phi={lam}", f"run.total_episodes={steps}",
                      f"run.save_every={steps // 2}", "run.monitor_every=0", "run.plot_every=0")
        with open(tmp / f"lm_{row}.log", "w") as out, contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(out), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if train(cfg).code != 0:
                raise SystemExit(f"the lambda_phi={lam} run failed: see {tmp / f'lm_{row}.log'}")
        runs[row] = validations(cfg)
    unigram, k = unigram_perplexity(cfg)
    untrained = runs["phi"][0]
    note(f"lm: random GPT-2 (2 layers, width 128) + LoRA r 8, {steps} steps of 8 x 64 tokens, lr 2e-3; held-out "
         f"perplexity / Φ at episodes {sorted(runs['phi'])}: " + "; ".join(
             f"lambda_phi {lam}: " + ", ".join(f"{p:,.0f} / {phi:.2f}" for p, phi in runs[row].values())
             for row, lam in (("phi", 1), ("no_phi", 0))) + f"; unigram (add-k, k {k:.3g}) {unigram:,.0f}")
    figures = {"untrained": untrained, "phi": runs["phi"][steps], "no_phi": runs["no_phi"][steps]}
    for row, (perplexity, _) in figures.items():
        result(f"science.lm.perplexity.{row}", perplexity, "perplexity")
    result("science.lm.perplexity.unigram", unigram, "perplexity")
    for row, (_, phi) in figures.items():
        result(f"science.lm.phi.{row}", phi, "phi")


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Train each architecture briefly, then read its held-out figures and the baselines from training_log.json;
    then the language model with and without Φ, beside the unigram model."""
    quick = parse_quick(__doc__.splitlines()[0], argv)
    episodes = QUICK if quick else FULL
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
        noise_phi()
        language_model(Path(tmp), quick)


if __name__ == "__main__":
    main()
