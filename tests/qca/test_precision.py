"""Mixed precision: under autocast the laws run in bfloat16 and the physics (update, energy, cap, losses) stays in
float32, so an episode's losses stay within a stated tolerance of float32's, on the CPU as on a GPU. Tolerance: 0.01
on the bounded loss (in [0, 1]), 0.05 on each of its terms, and gradients pointing the same way (cosine > 0.95)."""
from typing import Optional

import pytest
import torch

from atheria.models import ARCHITECTURES, build_law
from atheria.qca import LossWeights, Physics, energy, episode_losses, initial_state, rollout
from tests.helpers import metrics, train_in_process

LOSS_TOLERANCE, TERM_TOLERANCE, MIN_COSINE = 0.01, 0.05, 0.95


def law_at(arch: str, weights: str, device: str = "cpu") -> torch.nn.Module:
    """A law seeded as these checks seed it: at its initial weights, or "far" (every weight drawn with std 0.1, far
    from the identity). bench/gpu_check.py runs the same check on a GPU."""
    torch.manual_seed(0)
    law = build_law(arch, 4, 16).to(device)
    if weights == "far":
        with torch.no_grad():
            for p in law.parameters():
                p.normal_(0, 0.1)
    return law


def episode(law, psi0, physics, dtype: Optional[torch.dtype] = None):
    """(final state, losses, gradient) of one episode on psi0's device, under autocast to `dtype` (None: float32)."""
    law.zero_grad()
    with torch.autocast(psi0.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        psif = rollout(law, psi0, physics)
        out = episode_losses(psi0, psif, LossWeights())
    out["loss"].backward()
    grad = torch.cat([p.grad.flatten() for p in law.parameters() if p.grad is not None])
    return psif, out, grad


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("weights", ["initial", "far"])  # "far": every weight drawn with std 0.1, far from the identity
def test_bf16_autocast_keeps_the_physics_in_float32_and_the_losses_near_float32s(arch, weights):
    law = law_at(arch, weights)
    psi0, physics = initial_state(0, 0, 2, 16, 4), Physics(steps=20)
    _, full, full_grad = episode(law, psi0, physics)
    psif, mixed, mixed_grad = episode(law, psi0, physics, torch.bfloat16)
    assert psif.dtype == torch.complex64 and all(v.dtype == torch.float32 for v in mixed.values())
    assert (energy(psif) <= energy(psi0) * (1 + 1e-5)).all()  # the cap holds in float32
    assert abs(mixed["loss"].item() - full["loss"].item()) <= LOSS_TOLERANCE
    assert all(abs(mixed[k].item() - full[k].item()) <= TERM_TOLERANCE for k in full)
    assert torch.nn.functional.cosine_similarity(mixed_grad, full_grad, dim=0) > MIN_COSINE


def test_a_bf16_mixed_run_trains_like_a_float32_one(tmp_path):
    runs = {}
    for precision in ("32-true", "bf16-mixed"):
        root = tmp_path / precision
        assert train_in_process(root, "run.total_episodes=8", f"trainer.precision={precision}") == 0
        runs[precision] = [float(r["train/loss"]) for r in metrics(root, "UNET_8ch_D4")]
    assert len(runs["bf16-mixed"]) == len(runs["32-true"]) == 8
    assert max(abs(a - b) for a, b in zip(runs["bf16-mixed"], runs["32-true"])) <= LOSS_TOLERANCE
    assert runs["bf16-mixed"] != runs["32-true"]  # the law did run in bfloat16


@pytest.mark.parametrize("gpu,expected", [(None, "32-true"), ((7, 5), "16-mixed"), ((8, 0), "bf16-mixed"),
                                          ((9, 0), "bf16-mixed")])
def test_the_default_precision_follows_the_device(monkeypatch, gpu, expected):
    from atheria.config.resolvers import auto_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu is not None)  # no GPU here: its answers stand in
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: gpu)
    assert auto_precision() == expected  # a T4 is 7.5: float16 with loss scaling; A100 8.0, H100 9.0: bfloat16
