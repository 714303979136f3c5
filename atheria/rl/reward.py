"""The scheduler's reward, term by term: what one decision gained in C, in Φ and in perplexity, minus its cost.

    r = α·ΔC + β·ΔΦ + γ·(ppl_before − ppl_after) / ppl_before − δ·cost

- ΔC: change of the consciousness score C = Φ / 10 (the reference's score, in [0, 1)); since C follows Φ, α and β
  together weight a Φ gain (α/10 + β per unit of Φ), α on the [0, 1) scale, β on Φ's own [0, 10).
- ΔΦ: change of Φ, measured on the same held-out probe batch before and after the decision.
- relative perplexity drop: positive when the held-out perplexity falls, scale-free so a random base (perplexity in
  the tens of thousands) and GPT-2 (25-35) weigh alike.
- cost: the decision's Φ loss weight as a share of the episode, w_phi / max_steps, so an episode spent wholly on
  PHI costs δ and one on TEXT costs nothing: Φ gains must pay for the steps taken away from the text objective.

Every term is a difference or a cost of this decision: there is no constant bonus, so an episode's return is
α·(C_end − C_start) + β·(Φ_end − Φ_start) + γ·Σ relative drops − δ·(mean Φ weight). The reference added
fixed in-band bonuses that dominated its total; none here.
"""
from __future__ import annotations

from dataclasses import dataclass

C_SCALE = 10.0


@dataclass(frozen=True)
class RewardWeights:
    """α, β, γ, δ of `rl.reward` (reference defaults 1.0, 0.5, 0.1, 0.2)."""

    alpha: float = 1.0
    beta: float = 0.5
    gamma: float = 0.1
    delta: float = 0.2


@dataclass(frozen=True)
class Reading:
    """What the held-out probe batch measured: Φ of the model's hidden states and the model's perplexity."""

    phi: float
    perplexity: float

    @property
    def c(self) -> float:
        """The consciousness score C = Φ / 10."""
        return self.phi / C_SCALE


def reward_terms(before: Reading, after: Reading, cost: float, w: RewardWeights) -> dict[str, float]:
    """The weighted terms of one decision's reward (their sum is the reward), for the reward and for the logs."""
    return {
        "c": w.alpha * (after.c - before.c),
        "phi": w.beta * (after.phi - before.phi),
        "perplexity": w.gamma * (before.perplexity - after.perplexity) / before.perplexity,
        "cost": -w.delta * cost,
    }
