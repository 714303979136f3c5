"""`init_from`: the weights a fresh run's law starts from: a checkpoint file or URL, or an experiment's best-final.ckpt
(else last.ckpt) under the local root, then the remote one. Read safely and checked to fit this run's law before
anything is written (imports no Lightning, so a refusal is quick); atheria.models.transfer says how a law of another
width or d_state is seeded."""
from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Dict

import torch
from omegaconf import DictConfig
from torch import Tensor

from atheria.errors import ConfigError
from atheria.models import ARCHITECTURES, Law, build_law
from atheria.models.transfer import Transfer, plan, seed
from atheria.storage.atomic import get_file_atomic
from atheria.storage.finder import CorruptCheckpoint, load_checkpoint
from atheria.storage.layout import Layout
from atheria.storage.paths import is_remote, url_to_fs

ACCEPTED = "accepted: a checkpoint path or URL, or the name of an experiment with checkpoints"
PREFIX = "law."  # the QCA module's law, in its checkpoints' state_dict


@dataclass(frozen=True)
class Source:
    """The checked weights `init_from` names: where they come from, their law in words, and how they map onto ours."""

    where: str
    law: str
    state: Dict[str, Tensor]
    transfer: Transfer

    def seed(self, law: Law, say: Callable[[str], None] = print) -> None:
        """Seed `law` (freshly built, so new channels keep their init) and say what transferred in one line."""
        seed(law, self.state, self.transfer)
        say(f"init_from: {self.transfer.summary()}, from the {self.law} law in {self.where}")


def _describe(arch: Any, d_state: Any, hidden_channels: Any) -> str:
    return f"{str(arch).upper()} d_state={d_state} hidden_channels={hidden_channels}"


def _find(init_from: str, roots: list[str]) -> str:
    """The checkpoint `init_from` names: itself when it is a file or URL, else an experiment's under the first root
    that has one."""
    if is_remote(init_from) or os.path.isfile(init_from):
        return init_from
    tried = []
    for root in roots:
        try:
            ckpts = Layout(root, init_from).checkpoints
        except ValueError:  # not a name a folder can have
            break
        tried.append(ckpts)
        with contextlib.suppress(Exception):  # an unreachable remote: not found there
            fs, path = url_to_fs(ckpts)
            for name in ("best-final.ckpt", "last.ckpt"):
                if fs.isfile(f"{path}/{name}"):
                    return f"{ckpts}/{name}"
    raise ConfigError(f"init_from={init_from!r} names no checkpoint file nor an experiment with checkpoints in "
                      f"{' or '.join(tried) or 'storage.local'}; {ACCEPTED}")


def _load(init_from: str, where: str) -> dict:
    """The checkpoint, loaded without executing pickled code (a remote one through a temporary local copy)."""
    try:
        if not is_remote(where):
            return load_checkpoint(url_to_fs(where)[1])
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, os.path.basename(where))
            try:
                get_file_atomic(where, local)
            except Exception as exc:
                raise ConfigError(f"init_from={init_from!r}: {where} could not be read ({type(exc).__name__}); "
                                  f"{ACCEPTED}") from exc
            return load_checkpoint(local)
    except CorruptCheckpoint as exc:
        raise ConfigError(f"init_from={init_from!r} is not a loadable checkpoint ({exc}); {ACCEPTED}") from exc


def read_source(cfg: DictConfig) -> Source:
    """The weights `init_from` names for this run's law; a one-line ConfigError when it names no checkpoint, a file
    that is not a safe, complete checkpoint or of no QCA law, or a law none of whose tensors fits this one."""
    init_from, m = str(cfg.init_from), cfg.model
    where = _find(init_from, [cfg.storage.local] + ([cfg.storage.remote] if cfg.storage.remote else []))
    ckpt = _load(init_from, where)
    hparams, weights = ckpt.get("hyper_parameters"), ckpt.get("state_dict")
    ours = _describe(m.arch, m.d_state, m.hidden_channels)
    named = f"init_from={init_from!r}" + (f" ({where})" if where != init_from else "")
    with torch.device("meta"):  # shapes only: the run's module is built (and seeded) later
        law = build_law(m.arch, m.d_state, m.hidden_channels)
        try:
            source_law = build_law(hparams["arch"], int(hparams["d_state"]), int(hparams["hidden_channels"]))
            state = {k[len(PREFIX):]: v for k, v in weights.items() if k.startswith(PREFIX) and isinstance(v, Tensor)}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{named} holds no QCA law (no model.arch, d_state, hidden_channels and law weights); "
                              f"accepted: a checkpoint of a {', '.join(ARCHITECTURES)} run") from exc
    theirs = _describe(hparams["arch"], hparams["d_state"], hparams["hidden_channels"])
    transfer = plan(law, state, source_law.channel_parts())
    if not transfer.transferred:
        raise ConfigError(f"{named} holds a {theirs} law: none of its tensors fits this "
                          f"run's {ours} law; accepted: a checkpoint of a {str(m.arch).upper()} law (any d_state or "
                          "hidden_channels), or init_from=null")
    return Source(where, theirs, state, transfer)
