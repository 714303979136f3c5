"""Seeding a law from another law's weights (init_from): every tensor accounted for, the source's channels copied part
by part, and a widened law computing exactly its source's delta."""
import pytest
import torch

from atheria.models import ARCHITECTURES, Law, build_law
from atheria.models.transfer import plan, seed


def trained(arch: str, d_state: int, hidden: int) -> Law:
    """A law whose every weight is far from its init, so that a copy that misses anything shows in its delta."""
    torch.manual_seed(1)
    law = build_law(arch, d_state, hidden)
    with torch.no_grad():
        for tensor in law.state_dict(keep_vars=True).values():
            tensor.add_(0.3 * torch.randn_like(tensor))
    return law


def transferred(source: Law, arch: str, d_state: int, hidden: int, init_seed: int = 2):
    """A fresh law of the given size seeded from `source`, and its plan."""
    torch.manual_seed(init_seed)
    law = build_law(arch, d_state, hidden)
    transfer = plan(law, source.state_dict(), source.channel_parts())
    seed(law, source.state_dict(), transfer)
    return law, transfer


def psi(d_state: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 2 * d_state, 8, 8, generator=torch.Generator().manual_seed(seed))


def widen(x: torch.Tensor, d_state: int) -> torch.Tensor:
    """psi's real view with more components: the given ones, the new ones zero (real parts, then imaginary)."""
    d = x.shape[1] // 2
    wide = torch.zeros(x.shape[0], 2 * d_state, *x.shape[2:])
    wide[:, :d], wide[:, d_state:d_state + d] = x[:, :d], x[:, d:]
    return wide


def narrow(delta: torch.Tensor, d_state: int) -> torch.Tensor:
    """The first d_state components of a wider delta."""
    d = delta.shape[1] // 2
    return torch.cat([delta[:, :d_state], delta[:, d:d + d_state]], dim=1)


@pytest.mark.parametrize("to_d,to_h", [(4, 16), (8, 16), (8, 8)], ids=["wider", "wider+d_state", "d_state"])
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_a_widened_law_takes_every_tensor_and_computes_its_sources_delta(arch, to_d, to_h):
    source = trained(arch, 4, 8)
    law, transfer = transferred(source, arch, to_d, to_h)
    total = len(law.state_dict())
    assert len(transfer.loaded) + len(transfer.seeded) + len(transfer.left) == total
    assert transfer.transferred == total and transfer.left == [] and transfer.unused == []
    assert transfer.seeded, "shapes differ, so some tensors are seeded rather than loaded"
    x = psi(4)
    with torch.no_grad():
        expected, got = source(x)[0], narrow(law(widen(x, to_d))[0], 4)
    assert expected.abs().mean() > 1e-2  # a delta worth comparing
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_widened_unet_tensors_hold_the_sources_channels_part_by_part_and_new_ones_at_init():
    source = trained("unet", 4, 8)
    law, transfer = transferred(source, "unet", 4, 16, init_seed=3)
    torch.manual_seed(3)
    fresh = build_law("unet", 4, 16).state_dict()
    src, got = source.state_dict(), law.state_dict()
    assert transfer.loaded == ["head.bias"] and len(transfer.seeded) == 41
    assert torch.equal(got["lift.0.weight"][:8], src["lift.0.weight"])
    assert torch.equal(got["lift.0.weight"][8:], fresh["lift.0.weight"][8:])  # new output channels: their init
    assert torch.equal(got["lift.1.weight"][:8], src["lift.1.weight"])  # GroupNorm's affine
    fuse = got["fuse1.0.weight"]  # out 4h, in [up-sampled 4h, skip 2h]: source [32, 48], law [64, 96]
    assert torch.equal(fuse[:32, :32], src["fuse1.0.weight"][:, :32])  # up-sampled part
    assert torch.equal(fuse[:32, 64:80], src["fuse1.0.weight"][:, 32:])  # skip part, at its new offset
    assert not fuse[:32, 32:64].any() and not fuse[:32, 80:].any()  # new inputs into copied outputs: zero
    assert torch.equal(fuse[32:], fresh["fuse1.0.weight"][32:])
    up = got["up1.weight"]  # ConvTranspose2d: [in 8h, out 4h]
    assert torch.equal(up[:64, :32], src["up1.weight"]) and not up[64:, :32].any()
    assert torch.equal(got["head.weight"][:, :8], src["head.weight"]) and not got["head.weight"][:, 8:].any()


def test_a_narrower_law_takes_the_sources_first_channels():
    source = trained("mlp", 4, 16)
    law, transfer = transferred(source, "mlp", 4, 8)
    assert transfer.transferred == 6 and transfer.left == []
    assert torch.equal(law.state_dict()["net.2.weight"], source.state_dict()["net.2.weight"][:8, :8])


def test_nothing_transfers_between_laws_with_no_tensor_in_common():
    source = trained("unet", 4, 8)
    law, transfer = transferred(source, "mlp", 4, 8)
    assert transfer.transferred == 0 and len(transfer.left) == 6 and len(transfer.unused) == 42


def test_a_deep_qca_law_seeded_from_an_mlp_computes_the_mlps_delta():
    source = trained("mlp", 4, 8)
    law, transfer = transferred(source, "deep_qca", 4, 8)
    assert transfer.seeded == ["net.0.weight"] and transfer.transferred == 6  # the neighbour inputs are new
    with torch.no_grad():
        torch.testing.assert_close(law(psi(4))[0], source(psi(4))[0], rtol=1e-4, atol=1e-5)


def test_the_summary_counts_and_names_the_first_few_left_at_init():
    law = build_law("mlp", 4, 8)
    transfer = plan(law, {"net.0.weight": torch.zeros(8, 8, 1, 1), "other": torch.zeros(1)}, law.channel_parts())
    line = transfer.summary()
    assert line.startswith("1 of 6 tensors: 1 loaded, 0 seeded")
    assert line.endswith("5 left at init (net.0.bias, net.2.weight, net.2.bias ... and 2 more); "
                         "1 of the source's tensors unused")
