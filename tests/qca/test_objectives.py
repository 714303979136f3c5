"""qca.objective: the bounded objective's terms stay in [0, 1], keep a gradient for laws that shrink and laws that
amplify psi (at initialisation and under the cap), score a collapse onto a few cells badly and sit at the same level
for any grid size and d_state; the reference formula keeps its known defects, for reproduction."""
import math

import pytest
import torch
from torch import nn

from atheria.models import build_law
from atheria.qca import LossWeights, Physics, episode_losses, initial_state, rollout
from atheria.qca.losses import rotation_correlation, spectral_entropy

TERMS = ("survival", "symmetry", "complexity")


class Scaled(nn.Module):
    """psi <- c psi + a real law's delta: c < 1 shrinks psi, c > 1 amplifies it (and the cap then holds each step)."""

    def __init__(self, c, law, gamma):
        super().__init__()
        self.c, self.law, self.gamma = nn.Parameter(torch.tensor(float(c))), law, gamma

    def forward(self, x, memory=None):
        delta, memory = self.law(x, memory)
        return (self.c - 1 + self.gamma) * x + delta, memory


def uniform(c, gamma=0.001):
    """The hand-written law psi <- c psi."""
    return lambda x, memory=None: ((c - 1 + gamma) * x, [])


def losses(law, objective="bounded", grid=16, d_state=4, steps=6, batch=2):
    psi0 = initial_state(0, 0, batch, grid, d_state)
    return episode_losses(psi0, rollout(law, psi0, Physics(steps=steps)), LossWeights(), objective)


@pytest.mark.parametrize("c", [0.9, 1.1], ids=["shrinks", "amplifies"])
@pytest.mark.parametrize("arch", ["unet", "deep_qca"])
@pytest.mark.parametrize("term", TERMS)
def test_every_bounded_term_reaches_the_law_whether_it_shrinks_or_amplifies_psi(term, arch, c):
    torch.manual_seed(0)
    law = Scaled(c, build_law(arch, 4, 8), gamma=0.001)
    out = losses(law)
    out[term].backward()
    inner = sum(p.grad.abs().sum().item() for p in law.law.parameters() if p.grad is not None)
    assert inner > 0, f"{term} gives the {arch} law no gradient when it {'amplifies' if c > 1 else 'shrinks'} psi"


def _survival_gradient(objective):
    torch.manual_seed(0)
    law = Scaled(1.1, build_law("deep_qca", 4, 8), gamma=0.001)  # amplifies: the cap holds every step
    out = losses(law, objective)
    out["survival"].backward()
    return out["survival"].item(), sum(p.grad.abs().sum().item() for p in law.law.parameters())


def test_under_the_cap_the_reference_survival_is_flat_and_the_bounded_one_is_not():
    value, gradient = _survival_gradient("reference")
    assert value == pytest.approx(0.2, abs=1e-4) and gradient < 1e-6  # |E0/E0 - 0.8|: the dead zone
    value, gradient = _survival_gradient("bounded")
    assert gradient > 1e-6


def _collapse(grid, d_state=4):
    """All of the initial energy on the central 2x2 cells: the reference objective's global minimum."""
    psi0 = initial_state(0, 0, 1, grid, d_state)
    psif = torch.zeros_like(psi0)
    mid = grid // 2
    psif[:, mid - 1:mid + 1, mid - 1:mid + 1, 0] = math.sqrt(grid * grid / 4)
    return psi0, psif


@pytest.mark.parametrize("grid", [16, 32])
def test_a_collapse_onto_a_few_cells_scores_worse_than_doing_nothing(grid):
    psi0, collapsed = _collapse(grid)
    still = rollout(uniform(1.0), psi0, Physics(steps=6))
    for objective, collapse_wins in (("reference", True), ("bounded", False)):
        lc = episode_losses(psi0, collapsed, LossWeights(), objective)
        ls = episode_losses(psi0, still, LossWeights(), objective)
        assert (lc["loss"] < ls["loss"]).item() is collapse_wins, (objective, lc["loss"], ls["loss"])
    assert episode_losses(psi0, collapsed, LossWeights(), "bounded")["survival"].item() > 0.95


def test_the_bounded_level_is_the_same_for_any_grid_and_d_state():
    levels = {(g, d): losses(uniform(0.99), grid=g, d_state=d, batch=4)["loss"].item()
              for g in (16, 32, 64) for d in (4, 8)}
    assert max(levels.values()) - min(levels.values()) < 0.02, levels
    reference = {(g, d): losses(uniform(0.99), "reference", grid=g, d_state=d, batch=4)["loss"].item()
                 for g in (16, 64) for d in (4, 8)}
    assert max(reference.values()) - min(reference.values()) > 0.05, reference  # why it is not the default


def test_each_bounded_term_spans_zero_to_one():
    grid = 32
    y, x = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    noise = initial_state(0, 0, 1, grid, 4).abs().square().sum(-1)
    wave = 1 + torch.cos(2 * math.pi * 4 * x / grid)[None].float()  # one spatial frequency
    r = ((x - (grid - 1) / 2) ** 2 + (y - (grid - 1) / 2) ** 2) ** 0.5  # from the grid's centre
    ring = (1 + torch.cos(2 * math.pi * r / 8))[None].float()
    assert spectral_entropy(noise).item() > 0.85 and spectral_entropy(wave).item() < 0.2
    assert spectral_entropy(torch.ones(1, grid, grid)).item() > 0.99  # uniform: no structure
    assert abs(rotation_correlation(noise).item()) < 0.1  # independent cells
    assert abs(rotation_correlation(wave).item()) < 0.01  # stripes turn into crossing stripes
    assert rotation_correlation(ring).item() > 0.95  # rings about the centre: four-fold symmetric
    psi0 = initial_state(0, 0, 1, grid, 4)
    for field in (noise, wave, ring):
        state = field.sqrt()[..., None].to(torch.complex64)
        out = episode_losses(psi0, state, LossWeights(), "bounded")
        assert all(0 <= out[t].item() <= 1 for t in TERMS), out
        assert 0 <= out["loss"].item() <= 1


def test_a_nearly_uniform_field_with_a_faint_symmetric_ripple_earns_no_structure():
    """What laws found before the contrast floor: flatten the field, keep a faint smooth ripple from the borders."""
    grid = 32
    y, x = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    r = ((x - (grid - 1) / 2) ** 2 + (y - (grid - 1) / 2) ** 2) ** 0.5
    ripple = torch.cos(2 * math.pi * r / 32)[None].float()
    faint, strong = 1 + 0.02 * ripple, 1 + 0.8 * ripple
    assert rotation_correlation(faint).item() < 0.1 and spectral_entropy(faint).item() > 0.9
    assert rotation_correlation(strong).item() > 0.9 and spectral_entropy(strong).item() < 0.5


def test_all_zero_weights_are_refused():
    from atheria.errors import ConfigError
    from atheria.families.qca import check
    from tests.helpers import compose_cfg

    with pytest.raises(ConfigError, match=r"qca.weights=.* is invalid; accepted: weights whose sum is positive"):
        check(compose_cfg("qca.weights.survival=0", "qca.weights.symmetry=0", "qca.weights.complexity=0"))


@pytest.mark.parametrize("overrides,message", [
    (("qca.objective=energy",), "qca.objective='energy' is invalid; accepted: bounded, reference"),
    (("qca.alive_threshold=0",), "qca.alive_threshold=0 is invalid; accepted: a positive number"),
    (("run.eval_every=-5",), "run.eval_every=-5 is invalid; accepted: an integer >= 0"),
    (("run.eval_episodes=0",), "run.eval_episodes=0 is invalid; accepted: a positive integer (0 only with"),
])
def test_bad_objective_and_evaluation_settings_are_refused_in_one_line(overrides, message):
    from atheria.config import validate
    from atheria.errors import ConfigError
    from tests.helpers import compose_cfg

    with pytest.raises(ConfigError) as err:
        validate(compose_cfg(*overrides))
    assert message in str(err.value) and "\n" not in str(err.value)
    validate(compose_cfg("run.eval_episodes=0", "run.eval_every=0"))  # no evaluation, no held-out episodes needed
