"""Fixtures for the `atheria` command tests: small trained-looking checkpoints laid out as a run leaves them."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
import torch


def make_checkpoint(root: Path, arch: str, name: str = "", step: int = 5, seed: int = 0) -> Path:
    """A checkpoint of a small QCA law with O(1) random weights (so that outputs are far from zero and any
    mismatch shows), at {root}/checkpoints/{name}/best-final.ckpt as a run writes it."""
    from atheria.modules import QCAModule

    module = QCAModule(arch=arch, d_state=2, hidden_channels=8, physics={"steps": 3}, weights={})
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.law.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    path = root / "checkpoints" / (name or f"{arch.upper()}_8ch_D2") / "best-final.ckpt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": step, "hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()},
               path)
    return path


@pytest.fixture
def checkpoint(tmp_path: Path) -> Callable[..., Path]:
    """make_checkpoint under this test's tmp_path/out."""
    return lambda arch, **kw: make_checkpoint(tmp_path / "out", arch, **kw)
