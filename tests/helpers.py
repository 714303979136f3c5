"""Shared helpers for tests that run train.py in real subprocesses."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omegaconf import DictConfig

REPO = Path(__file__).resolve().parents[1]
# run.eval_every=0: every save is ranked by the smoothed training loss, as these tests expect (tests/qca/
# test_held_out.py runs held-out evaluations)
TINY = ("qca.grid_size=8", "qca.steps=3", "model.hidden_channels=8", "run.total_episodes=4", "run.save_every=2",
        "run.eval_every=0", "platform=local")


WORDS = "the universe light star planet energy field wave particle atom law symmetry order chaos time space".split()


def write_corpus(folder: Path) -> Path:
    """A small generated corpus in `folder`: train.txt and valid.txt of sentences over a 16-word vocabulary."""
    import random

    rng = random.Random(0)
    for name, n in (("train.txt", 600), ("valid.txt", 80)):
        lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12))).capitalize() + "." for _ in range(n)]
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


def tiny_lm(corpus: Path, *overrides: str) -> tuple[str, ...]:
    """The overrides of a tiny GPT-2 + LoRA run (a random GPT-2 16 wide, LoRA rank 4, blocks of 16 tokens, 10 a
    batch) on a corpus written by write_corpus."""
    return ("model=gpt2_lora", "model.pretrained=null", "model.n_embd=16", "model.lora_r=4", f"data.path={corpus}",
            "data.block_size=16", "data.batch_size=10", *overrides)


def train_cmd(root: Path, *overrides: str, base: tuple[str, ...] = TINY) -> list[str]:
    """The command line of a tiny train.py run whose files all go under `root` (`base`: the tiny QCA settings)."""
    return [sys.executable, str(REPO / "train.py"), *base, f"storage.local={root}", *overrides]


def run_train(root: Path, *overrides: str, cwd: Path | None = None, timeout: float = 300,
              env: dict[str, str] | None = None, base: tuple[str, ...] = TINY) -> subprocess.CompletedProcess:
    """Run a tiny train.py to completion and return the finished process (text output captured)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline", **(env or {})}
    return subprocess.run(train_cmd(root, *overrides, base=base), cwd=cwd or root.parent, env=full_env, text=True,
                          capture_output=True, timeout=timeout)


def metrics(root: Path, name: str) -> list[dict[str, str]]:
    """Rows of an experiment's metrics.csv that carry a training loss."""
    import csv

    with open(root / "logs" / name / "metrics.csv") as f:
        return [row for row in csv.DictReader(f) if row.get("train/loss")]


def compose_cfg(*overrides: str, hydra: bool = False) -> DictConfig:
    """train.py's config with `overrides`, composed in this process: the one place tests and bench compose
    (`hydra`: with the `hydra` node too, for launchers and sweepers)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from atheria.config import CONF_DIR, register_resolvers

    register_resolvers()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides), return_hydra_config=hydra)


def compose(root: Path, *overrides: str, base: tuple[str, ...] = TINY) -> DictConfig:
    """The composed config of a tiny run under `root`, as train.py would build it (for in-process runs)."""
    return compose_cfg(*base, f"storage.local={root}", *overrides)


def train_in_process(root: Path, *overrides: str) -> int:
    """Run a tiny training session in this process (for remotes that live in this process, like memory://)."""
    from atheria.runner import train

    return train(compose(root, *overrides)).code


def load(path: Path) -> dict:
    """A checkpoint, loaded the safe way."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def wait_for(predicate, timeout: float = 120.0, every: float = 0.1) -> None:
    """Poll until predicate() is true; fail the test after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(every)


def saved_step(ckpts: Path) -> int | None:
    """The step of a checkpoint dir's latest.json (renamed into place, so whole whenever it is there), or None
    before the first save."""
    try:
        return json.loads((ckpts / "latest.json").read_text())["step"]
    except FileNotFoundError:
        return None


def fill(disk: Path) -> Path:
    """Write a ballast file until the disk is full."""
    ballast = disk / "ballast"
    with open(ballast, "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 16))
                f.flush()
        except OSError:
            pass
    return ballast
