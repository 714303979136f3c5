"""The scheduler's reward: what one decision changed on the held-out probe, each term in its objective's own units,
scaled by what a typical decision changes it by.

    r = text · (CE_before − CE_after) / text_nats  +  phi · (S_before − S_after) / phi_units

- CE: the probe's cross-entropy in nats per token (log of its perplexity), the text objective itself.
- S = max(0, model.phi_target − Φ): how far the probe's Φ falls short of its target, the Φ objective itself
  (atheria.lm.phi.phi_penalty). Above the target Φ earns nothing more; falling below it costs.
- text_nats, phi_units (rl.reward.*): a typical decision's gain in each — so a typical TEXT decision and a
  typical PHI decision each earn about `text` and `phi`, and neither objective drowns the other. baselines.json
  records what each constant action changes per decision in this run's setting, to set them from.

Every term is a change made by this decision: there is no constant and no cost, so an episode's return is
text · (CE_start − CE_end) / text_nats + phi · (S_start − S_end) / phi_units. The reference added fixed in-band
bonuses that dominated its total, and repeated Φ as C = Φ / 10; neither here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RewardWeights:
    """rl.reward: each term's weight, and the typical decision's gain that is one unit of it."""

    text: float
    phi: float
    text_nats: float
    phi_units: float


@dataclass(frozen=True)
class Reading:
    """What the held-out probe batch measured: Φ of the model's hidden states, its cross-entropy (nats per token),
    and the Φ shortfall of the target."""

    phi: float
    ce: float
    shortfall: float

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.ce, 50.0))


def changes(before: Reading, after: Reading) -> dict[str, float]:
    """What one decision changed on the probe, after − before: its cross-entropy (nats) and its Φ shortfall."""
    return {"ce": after.ce - before.ce, "shortfall": after.shortfall - before.shortfall}


def reward_terms(change: dict[str, float], w: RewardWeights) -> dict[str, float]:
    """The weighted terms of one decision's reward from its `changes` (their sum is the reward), for the reward and
    for the logs."""
    return {"text": -w.text * change["ce"] / w.text_nats, "phi": -w.phi * change["shortfall"] / w.phi_units}
