"""The M-law contract: shapes, small initial delta, gradient to every parameter, memory, registry."""
from typing import List, Optional

import pytest
import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from atheria.models import ARCHITECTURES, LAWS, Law, build_law

SIZES = [(2, 8), (3, 12)]


def psi_view(law: Law, height: int = 8, width: int = 12, batch: int = 2, seed: int = 0) -> Tensor:
    """A unit-scale real view of psi for this law's d_state."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 2 * law.d_state, height, width, generator=generator)


def weighted_loss(delta: Tensor, seed: int = 1) -> Tensor:
    """A scalar that depends on every output entry with a different weight, so no gradient cancels."""
    weights = torch.randn(delta.shape, generator=torch.Generator().manual_seed(seed))
    return (delta * weights).sum() ** 2


def test_registry_finds_the_four_laws_by_their_names() -> None:
    assert ARCHITECTURES == ("deep_qca", "mlp", "snn_unet", "unet")
    assert [LAWS[arch].name for arch in ARCHITECTURES] == ["DEEP_QCA", "MLP", "SNN_UNET", "UNET"]


@pytest.mark.parametrize("d_state,hidden", SIZES)
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_delta_has_psi_shape_is_small_and_trains_every_parameter(arch: str, d_state: int, hidden: int) -> None:
    torch.manual_seed(0)
    law = build_law(arch, d_state, hidden)
    x = psi_view(law)
    delta, _ = law(x)
    assert delta.shape == x.shape
    assert torch.isfinite(delta).all()
    assert delta.abs().max() < 1e-2
    assert delta.abs().max() > 0
    weighted_loss(delta).backward()
    for name, parameter in law.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().max() > 0, name


def test_parameter_counts() -> None:
    def count(arch: str) -> int:
        return sum(p.numel() for p in build_law(arch, 8, 64).parameters())

    assert 5_000_000 < count("unet") < 9_000_000
    assert count("mlp") == (16 * 64 + 64) + (64 * 64 + 64) + (64 * 16 + 16) == 6288


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_grid_multiple_suffices(arch: str) -> None:
    law = build_law(arch, 2, 8)
    x = psi_view(law, height=3 * law.grid_multiple, width=5 * law.grid_multiple)
    assert law(x)[0].shape == x.shape


def test_unet_on_a_32_grid() -> None:
    law = build_law("unet", 4, 8)
    assert law.grid_multiple == 4
    x = psi_view(law, height=32, width=32, batch=1)
    assert law(x)[0].shape == x.shape


@pytest.mark.parametrize("arch", ["unet", "mlp", "deep_qca"])
def test_stateless_laws_return_no_memory(arch: str) -> None:
    law = build_law(arch, 2, 8)
    assert law(psi_view(law))[1] == []


def test_snn_unet_carries_membranes_across_steps_deterministically() -> None:
    torch.manual_seed(0)
    law = build_law("snn_unet", 2, 8)
    x = psi_view(law)
    fresh, memory = law(x)
    assert len(memory) > 0
    carried, _ = law(x, memory)
    assert not torch.equal(carried, fresh)
    again, _ = law(x, memory)
    assert torch.equal(again, carried)
    assert torch.equal(law(x)[0], fresh)


def test_snn_unet_reads_every_membrane_it_returns() -> None:
    torch.manual_seed(0)
    law = build_law("snn_unet", 2, 8)
    x = psi_view(law)
    _, memory = law(x)
    carried, _ = law(x, memory)
    for layer in range(len(memory)):
        charged = [m + 2.0 if i == layer else m for i, m in enumerate(memory)]
        assert not torch.equal(law(x, charged)[0], carried), f"membrane {layer} is ignored"


def test_snn_unet_spikes_are_binary() -> None:
    torch.manual_seed(0)
    law = build_law("snn_unet", 2, 8)
    spikes, _ = law.lif(law.encode(psi_view(law)), torch.zeros(2, 8, 8, 12))
    assert set(spikes.unique().tolist()) == {0.0, 1.0}


def test_deep_qca_neighbour_kernel_is_a_fixed_buffer() -> None:
    law = build_law("deep_qca", 2, 8)
    assert "neighbours" in dict(law.named_buffers())
    assert all(p.shape != law.neighbours.shape for p in law.parameters())
    assert law.neighbours[:, 0, 1, 1].abs().sum() == 0


def test_deep_qca_sees_the_cell_and_its_neighbours_only() -> None:
    torch.manual_seed(0)
    law = build_law("deep_qca", 2, 8)
    x = psi_view(law)
    nudged = x.clone()
    nudged[0, :, 4, 4] += 1.0
    change = (law(nudged)[0] - law(x)[0]).abs().sum(dim=1)[0]
    assert change[4, 4] > 0, "the cell's own state must reach its delta"
    assert change[4, 5] > 0 and change[3, 3] > 0, "neighbours must see the cell"
    assert change[4, 6] == 0 and change[2, 4] == 0, "the rule is local to a 3x3 neighbourhood"


def test_unknown_arch_is_a_one_line_error_naming_the_key() -> None:
    with pytest.raises(ValueError) as error:
        build_law("foo", 8, 64)
    message = str(error.value)
    assert message == "model.arch='foo' is not an architecture; accepted: deep_qca, mlp, snn_unet, unet"


def rollout_gradients(law: Law, x: Tensor, checkpointed: bool) -> List[Tensor]:
    """Gradients of a two-step episode, threading memory from step to step as the engine does."""
    law.zero_grad()
    psi, memory = x, None
    for _ in range(2):
        memory_in: Optional[List[Tensor]] = memory
        if checkpointed:
            delta, memory = checkpoint(law, psi, memory_in, use_reentrant=False)
        else:
            delta, memory = law(psi, memory_in)
        psi = psi + delta
    weighted_loss(psi).backward()
    return [p.grad.clone() for p in law.parameters()]


@pytest.mark.parametrize("arch", ["unet", "snn_unet"])
def test_activation_checkpointing_gives_the_same_gradients(arch: str) -> None:
    torch.manual_seed(0)
    law = build_law(arch, 2, 8)
    x = psi_view(law)
    plain = rollout_gradients(law, x, checkpointed=False)
    recomputed = rollout_gradients(law, x, checkpointed=True)
    for a, b in zip(plain, recomputed):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=0.0)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_torchscript_matches_eager(arch: str) -> None:
    law = build_law(arch, 2, 8).eval()
    x = psi_view(law)
    scripted = torch.jit.script(law)
    delta, memory = law(x)
    scripted_delta, scripted_memory = scripted(x)
    assert torch.equal(scripted_delta, delta)
    assert torch.equal(scripted(x, scripted_memory)[0], law(x, memory)[0])
