"""`init_from`: start a model from another experiment's weights, skipping layers whose shapes differ."""
from __future__ import annotations

from typing import Callable

from torch import nn

from atheria.storage.finder import load_checkpoint


def warm_start(module: nn.Module, checkpoint: str, prefix: str = "law.", say: Callable[[str], None] = print) -> int:
    """Copy the `prefix` weights of a checkpoint (loaded safely) whose shapes match; returns how many tensors."""
    source = {k: v for k, v in load_checkpoint(checkpoint)["state_dict"].items() if k.startswith(prefix)}
    own = module.state_dict()
    matching = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    skipped = [f"{k} {tuple(v.shape)}->{tuple(own[k].shape) if k in own else 'absent'}"
               for k, v in source.items() if k not in matching]
    module.load_state_dict(matching, strict=False)
    say(f"init_from: loaded {len(matching)} of {len(own)} tensors from {checkpoint}"
        + (f"; skipped {len(skipped)} whose shapes differ: {', '.join(skipped)}" if skipped else ""))
    return len(matching)
