"""TorchScript export of a trained law: a file usable without Atheria, verified against the eager law before it
appears under its final name.

The exported module keeps the law's call: `delta, memory = law(x, memory)` with x float32 [B, 2*d_state, H, W]
(real parts, then imaginary parts; H and W multiples of `grid_multiple`) and memory None at an episode's start,
then the list the previous call returned (empty for stateless laws). `atheria.json` in the file's extra files
holds the architecture, sizes and physics.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import warnings
from typing import Any, Iterator, Optional

import torch
from torch import Tensor, nn

from atheria.errors import one_line
from atheria.storage.atomic import temp_name

META_NAME = "atheria.json"


class ExportError(Exception):
    """A law that cannot be exported or whose exported file does not reproduce it; the message is one line."""


@contextlib.contextmanager
def _jit_quietly() -> Iterator[None]:
    """Silence the DeprecationWarnings torch 2.13 emits for jit.script/save/load: TorchScript is still the format
    a user can load with torch alone, on any grid size."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.(script|save|load).* is deprecated",
                                category=DeprecationWarning)
        yield


def script(law: nn.Module) -> torch.jit.ScriptModule:
    """torch.jit.script, without its deprecation warning."""
    with _jit_quietly():
        return torch.jit.script(law)


def random_state(d_state: int, grid_multiple: int, seed: int = 0) -> Tensor:
    """A random real view of psi [2, 2*d_state, G, G] on a small grid the law accepts."""
    side = 4 * grid_multiple
    return torch.randn(2, 2 * d_state, side, side, generator=torch.Generator().manual_seed(seed))


def _same(a: list[Tensor], b: list[Tensor]) -> Optional[str]:
    """None when the two output lists match in length, shape and value (to 1e-4 of each output's largest
    magnitude, so tiny deltas of a young law are compared as strictly as large ones); else what differs."""
    if len(a) != len(b):
        return f"{len(b)} outputs instead of {len(a)}"
    for i, (x, y) in enumerate(zip(a, b)):
        if x.shape != y.shape:
            return f"output {i} has shape {tuple(y.shape)} instead of {tuple(x.shape)}"
        if x.numel() == 0:
            continue
        gap, scale = (x - y).abs().max().item(), x.abs().max().item()
        if not gap <= 1e-4 * scale:  # written so that a NaN gap fails too
            return f"output {i} differs by up to {gap:.3g} (its largest value is {scale:.3g})"
    return None


def verify(path: str, eager: nn.Module, x: Tensor) -> None:
    """Load the file back and compare (delta, memory) with the eager law for two steps (the second reads memory)."""
    with _jit_quietly():
        loaded = torch.jit.load(path, map_location="cpu")
    with torch.no_grad():
        delta, memory = eager(x)
        got_delta, got_memory = loaded(x, None)
        again, _ = eager(x, memory)
        got_again, _ = loaded(x, got_memory)
    problem = _same([delta, *memory, again], [got_delta, *got_memory, got_again])
    if problem:
        raise ExportError(f"the exported file does not reproduce the eager law: {problem}")


def export_law(law: nn.Module, path: str, meta: dict[str, Any]) -> str:
    """Script a CPU copy of `law`, save it with `meta` as atheria.json, verify it, then move it into place at `path`."""
    eager = copy.deepcopy(law).cpu().float().eval()
    name = getattr(law, "name", type(law).__name__)
    try:
        scripted = script(eager)
    except Exception as exc:  # TorchScript raises its own frontend errors, RuntimeError, NotSupportedError...
        raise ExportError(f"{name} cannot be compiled to TorchScript: {one_line(exc, 10_000)}") from exc
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temp_name(os.path.abspath(path))
    try:
        with _jit_quietly():
            torch.jit.save(scripted, tmp, _extra_files={META_NAME: json.dumps(meta)})
        verify(tmp, eager, random_state(eager.d_state, eager.grid_multiple))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
    return path
