"""The physics: seeded states, gradients of every loss term, a varying survival rate, memory-saving paths."""
import pytest
import torch

from atheria.models import ARCHITECTURES, build_law
from atheria.qca import (
    LossWeights,
    Physics,
    density,
    episode_losses,
    initial_state,
    rollout,
    to_complex,
    to_real,
)
from atheria.qca.engine import noise_rate
from atheria.qca.state import episode_generator


def test_initial_state_is_a_function_of_seed_and_episode():
    a = initial_state(1, 7, 2, 8, 4)
    assert a.shape == (2, 8, 8, 4) and a.is_complex()
    assert torch.equal(a, initial_state(1, 7, 2, 8, 4))
    assert not torch.equal(a, initial_state(1, 8, 2, 8, 4))
    assert not torch.equal(a, initial_state(2, 7, 2, 8, 4))
    assert density(a).mean(dim=(1, 2)) == pytest.approx(torch.ones(2), abs=1e-5)


def test_a_batch_holds_distinct_episodes_each_seeded_on_its_own_and_batch_one_is_the_episode_itself():
    batch = initial_state(1, 7, 3, 8, 4)
    for i in range(3):  # member i is episode 7 x 3 + i, the same whatever else shares its batch
        assert torch.equal(batch[i:i + 1], initial_state(1, 7 * 3 + i, 1, 8, 4))
    parts = torch.randn(2, 1, 8, 8, 4, generator=episode_generator(1, 7))  # batch 1: the draw runs before batches had
    psi = torch.complex(parts[0], parts[1])
    expected = psi / density(psi).mean(dim=(1, 2), keepdim=True).sqrt()[..., None]
    assert torch.equal(initial_state(1, 7, 1, 8, 4), expected)
    assert not torch.equal(initial_state(1, 7, 2, 8, 4, held_out=True)[0], initial_state(1, 14, 1, 8, 4)[0])


def test_real_view_round_trip_puts_real_parts_first():
    psi = initial_state(0, 0, 1, 4, 3)
    x = to_real(psi)
    assert x.shape == (1, 6, 4, 4)
    assert torch.equal(x[:, :3], psi.real.permute(0, 3, 1, 2))
    assert torch.equal(to_complex(x), psi)


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("term", ["survival", "symmetry", "complexity"])
def test_every_loss_term_reaches_the_model_at_initialisation(arch, term):
    torch.manual_seed(0)
    law = build_law(arch, 4, 8)
    psi0 = initial_state(0, 0, 1, 16, 4)
    out = episode_losses(psi0, rollout(law, psi0, Physics(steps=4)), LossWeights())
    out[term].backward()
    grads = [p.grad.abs().sum().item() for p in law.parameters() if p.grad is not None]
    assert grads and sum(grads) > 0, f"{term} gives no gradient to {arch}"


def test_survival_rate_varies_with_the_law_and_the_decay():
    psi0 = initial_state(0, 0, 1, 16, 4)
    law = build_law("mlp", 4, 8)
    rates = []
    for gamma in (0.0, 0.05, 0.2):
        out = episode_losses(psi0, rollout(law, psi0, Physics(steps=10, gamma=gamma)), LossWeights())
        assert 0.0 <= out["survival_rate"].item() <= 1.0
        rates.append(out["survival_rate"].item())
    assert rates[0] > rates[2], rates
    assert len(set(rates)) > 1


def test_cap_never_lets_energy_grow_and_none_does():
    psi0 = initial_state(0, 0, 1, 8, 2)

    def pump(x, memory=None):
        return x * 0.5, []

    capped = rollout(pump, psi0, Physics(steps=5, gamma=0.0, normalize="cap"))
    free = rollout(pump, psi0, Physics(steps=5, gamma=0.0, normalize="none"))
    e0 = density(psi0).sum()
    assert density(capped).sum() == pytest.approx(e0.item(), rel=1e-5)
    assert density(free).sum() > 10 * e0


def _grads(law, physics):
    law.zero_grad()
    psi0 = initial_state(3, 1, 1, 16, 4)
    episode_losses(psi0, rollout(law, psi0, physics), LossWeights())["loss"].backward()
    return [p.grad.clone() for p in law.parameters()]


@pytest.mark.parametrize("arch", ["unet", "snn_unet"])
def test_activation_checkpointing_gives_the_same_gradients(arch):
    torch.manual_seed(0)
    law = build_law(arch, 4, 8)
    full = _grads(law, Physics(steps=3))
    ckpt = _grads(law, Physics(steps=3, checkpoint_steps=True))
    for a, b in zip(full, ckpt):
        torch.testing.assert_close(a, b)


def test_truncated_bptt_gives_gradients_that_differ_from_full():
    torch.manual_seed(0)
    law = build_law("mlp", 4, 8)
    full = _grads(law, Physics(steps=6))
    window = _grads(law, Physics(steps=6, bptt_window=2))
    assert all(g.abs().sum() > 0 for g in window)
    assert any(not torch.allclose(a, b) for a, b in zip(full, window))


def test_noise_curriculum_ramps_and_is_seeded():
    physics = Physics(steps=5, noise=True, noise_max=0.05, noise_ramp=100)
    assert noise_rate(physics, 0) == 0.0 and noise_rate(physics, 50) == pytest.approx(0.025)
    assert noise_rate(physics, 1000) == 0.05 and noise_rate(Physics(), 1000) == 0.0

    def still(x, memory=None):
        return torch.zeros_like(x), []

    psi0 = initial_state(0, 0, 1, 16, 2)
    a = rollout(still, psi0, physics, seed=1, episode=100)
    b = rollout(still, psi0, physics, seed=1, episode=100)
    clean = rollout(still, psi0, Physics(steps=5))
    assert torch.equal(a, b)
    assert not torch.allclose(a, clean)
    torch.testing.assert_close(density(a), density(clean))  # phases change, densities do not


@pytest.mark.slow  # Inductor compiles for 10-30 s on a 2-core CPU
def test_compiled_steps_give_the_same_gradients_as_eager():
    torch.manual_seed(0)
    law = build_law("mlp", 4, 8)
    eager = _grads(law, Physics(steps=2))
    compiled = _grads(law, Physics(steps=2, compile=True))
    for a, b in zip(eager, compiled):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
