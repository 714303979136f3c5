"""The architectures by config name, and the one place a law is built from model.* settings."""
from atheria.models.base import Law
from atheria.models.deep_qca import DeepQCA
from atheria.models.mlp import MLP
from atheria.models.snn_unet import SNNUNet
from atheria.models.unet import UNet

LAWS: dict[str, type[Law]] = {"unet": UNet, "snn_unet": SNNUNet, "mlp": MLP, "deep_qca": DeepQCA}
ARCHITECTURES: tuple[str, ...] = tuple(LAWS)


def build_law(arch: str, d_state: int, hidden_channels: int) -> Law:
    """Build the law named by model.arch; bad settings fail with a one-line error naming the key."""
    if arch not in LAWS:
        raise ValueError(f"model.arch={arch!r} is not an architecture; accepted: {', '.join(ARCHITECTURES)}")
    if d_state < 1:
        raise ValueError(f"model.d_state={d_state!r} is not a positive integer")
    if hidden_channels < 1:
        raise ValueError(f"model.hidden_channels={hidden_channels!r} is not a positive integer")
    return LAWS[arch](d_state, hidden_channels)
