"""The QCA physics, pure torch: state, one step, rollout, objectives and metrics."""
from atheria.qca.engine import NORMALIZATIONS, Physics, energy, rollout, step
from atheria.qca.losses import OBJECTIVES, LossWeights, episode_losses
from atheria.qca.state import density, initial_state, to_complex, to_real

__all__ = ["NORMALIZATIONS", "OBJECTIVES", "Physics", "energy", "rollout", "step", "LossWeights", "episode_losses",
           "density", "initial_state", "to_complex", "to_real"]
