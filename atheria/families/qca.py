"""The QCA family (model.family=qca): an M-law network trained on seeded episodes of the quantum cellular automaton."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from omegaconf import DictConfig, OmegaConf

from atheria.checks import is_number, non_negative_int, positive_int, require
from atheria.errors import ConfigError
from atheria.families.family import Family

if TYPE_CHECKING:
    from atheria.data import EpisodeDataModule
    from atheria.modules.qca import QCAModule

PHYSICS_KEYS = ("steps", "gamma", "normalize", "checkpoint_steps", "bptt_window", "noise", "noise_max", "noise_ramp",
                "compile")


def check(cfg: DictConfig) -> None:
    """The law's architecture and size, the grid it fits, the physics and the loss weights."""
    from atheria.models import ARCHITECTURES, LAWS
    from atheria.qca import NORMALIZATIONS, OBJECTIVES

    arch = require(cfg, "model.arch", lambda v: v in ARCHITECTURES, ", ".join(ARCHITECTURES))
    require(cfg, "model.d_state", positive_int, "a positive integer (typically 4, 8, 16 or 32)")
    require(cfg, "model.hidden_channels", positive_int, "a positive integer (typically 16 to 128)")
    multiple = LAWS[arch].grid_multiple
    require(cfg, "qca.grid_size", lambda v: positive_int(v) and v % multiple == 0,
            f"a positive multiple of {multiple} for model={arch}")
    steps = require(cfg, "qca.steps", positive_int, "a positive integer")
    require(cfg, "qca.batch_size", positive_int, "a positive integer")
    require(cfg, "qca.gamma", lambda v: is_number(v) and 0 <= v < 1, "a number in [0, 1)")
    require(cfg, "qca.normalize", lambda v: v in NORMALIZATIONS, ", ".join(NORMALIZATIONS))
    require(cfg, "qca.bptt_window", lambda v: non_negative_int(v) and v <= steps,
            f"an integer from 0 (full backpropagation) to qca.steps={steps}")
    require(cfg, "qca.noise", lambda v: isinstance(v, bool), "true or false")
    require(cfg, "qca.compile", lambda v: isinstance(v, bool), "true or false")
    require(cfg, "qca.objective", lambda v: v in OBJECTIVES, ", ".join(OBJECTIVES))
    require(cfg, "qca.alive_threshold", lambda v: is_number(v) and v > 0, "a positive number (default 0.1)")
    require(cfg, "run.eval_every", non_negative_int, "an integer >= 0 (0: no held-out evaluation)")
    require(cfg, "run.eval_episodes", lambda v: non_negative_int(v) and (v > 0 or not cfg.run.eval_every),
            "a positive integer (0 only with run.eval_every=0)")
    for term in ("survival", "symmetry", "complexity"):
        require(cfg, f"qca.weights.{term}", lambda v: is_number(v) and v >= 0, "a number >= 0")
    require(cfg, "qca.weights", lambda w: sum(w.values()) > 0, "weights whose sum is positive")


def check_memory(cfg: DictConfig) -> None:
    """Refuse a QCA episode that needs more memory than the device has free, before it fails on its first
    allocation (the estimate: atheria.qca.memory)."""
    from atheria.models import build_law
    from atheria.qca import Physics
    from atheria.qca.memory import GB, episode_bytes, free_bytes

    m, q = cfg.model, cfg.qca
    physics = Physics(steps=q.steps, gamma=q.gamma, normalize=q.normalize, checkpoint_steps=q.checkpoint_steps,
                      bptt_window=q.bptt_window)
    need = episode_bytes(build_law(m.arch, m.d_state, m.hidden_channels), physics, q.grid_size, q.batch_size)
    device, free = free_bytes(str(cfg.trainer.accelerator))
    if need > free:
        raise ConfigError(f"qca.grid_size={q.grid_size} with qca.steps={q.steps}, qca.batch_size={q.batch_size} and "
                          f"{m.arch.upper()} model.hidden_channels={m.hidden_channels} needs about {need / GB:,.1f} GB "
                          f"per episode; this {device} has {free / GB:,.1f} GB free; accepted: a smaller "
                          "qca.grid_size, qca.steps, qca.batch_size or model.hidden_channels, or "
                          "qca.checkpoint_steps=true or qca.bptt_window=K to keep fewer steps' activations")


def build_module(cfg: DictConfig) -> QCAModule:
    """The QCAModule of the config: the law, the physics, the loss weights and the optimizer settings."""
    from atheria.modules.qca import QCAModule

    qca = cast(dict[str, Any], OmegaConf.to_container(cfg.qca, resolve=True))
    return QCAModule(arch=cfg.model.arch, d_state=cfg.model.d_state, hidden_channels=cfg.model.hidden_channels,
                     physics={k: qca[k] for k in PHYSICS_KEYS}, weights=qca["weights"],
                     survival_target=qca["survival_target"], alive_threshold=qca["alive_threshold"], lr=cfg.optim.lr,
                     weight_decay=cfg.optim.weight_decay, smoothing=cfg.run.smoothing, seed=cfg.seed,
                     objective=qca["objective"])


def build_datamodule(cfg: DictConfig) -> EpisodeDataModule:
    """Seeded QCA episodes: each a function of (seed, episode index), so a resumed run continues exactly."""
    from atheria.data import EpisodeDataModule

    return EpisodeDataModule(cfg.seed, cfg.qca.batch_size, cfg.qca.grid_size, cfg.model.d_state,
                             held_out=cfg.run.eval_episodes)


def law_keys(cfg: DictConfig) -> list[str]:
    """The architecture, the sizes of its layers, and the objective it is trained for (continuing a run under
    another objective would join two different runs into one)."""
    return ["model.arch", "model.d_state", "model.hidden_channels", "qca.objective"]


def describe(cfg: DictConfig) -> str:
    """The law, its grid and episodes: 'UNET d_state=4 hidden=16, grid 64, 50 steps/episode, 1000 episodes' (or
    '1000 batches of 16 episodes' when qca.batch_size plays several per optimizer step)."""
    m, q = cfg.model, cfg.qca
    total = cfg.run.total_episodes
    episodes = f"{total} batches of {q.batch_size} episodes" if q.batch_size > 1 else f"{total} episodes"
    return (f"{m.arch.upper()} d_state={m.d_state} hidden={m.hidden_channels}, grid {q.grid_size}, "
            f"{q.steps} steps/episode, {episodes}")


def law_steps(cfg: DictConfig) -> int:
    """QCA steps in an episode, each one law forward."""
    return cfg.qca.steps


def cell_steps(cfg: DictConfig) -> int:
    """Cell-steps in one episode: grid^2 x steps x batch."""
    return cfg.qca.grid_size ** 2 * cfg.qca.steps * cfg.qca.batch_size


QCA = Family(name="qca", module_class="atheria.modules.qca:QCAModule",
             key_metric=("train/survival_rate", "survival rate"), check=check,
             check_needs=check_memory, build_module=build_module, build_datamodule=build_datamodule,
             law_keys=law_keys, describe=describe, law_steps=law_steps, cell_steps=cell_steps,
             evaluate_every=lambda cfg: cfg.run.eval_every, validate_every=lambda cfg: 0,
             saved_before={"objective": "reference"})
