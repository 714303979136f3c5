"""Atheria's entry point: compose the Hydra config, validate it, hand it to atheria.runner.

    python train.py                                    # a short QCA run on the CPU
    python train.py preset=long platform=colab_pro     # a 20 h Colab Pro session; rerun to continue
    python train.py -m model.d_state=4,8 model.hidden_channels=32,64
"""
import sys
from typing import Optional

import hydra
from hydra.errors import HydraException
from omegaconf import DictConfig

from atheria.config import CONF_DIR, ConfigError, check_group_choices, register_resolvers
from atheria.config.help import app_help, wants_help


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> Optional[float]:
    """Run one experiment (a job of a sweep under -m); returns its best smoothed loss, a sweeper's objective.
    A bad config exits 2 with a one-line message before anything is written."""
    from atheria.runner import train

    try:
        outcome = train(cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if outcome.code:
        sys.exit(outcome.code)
    return outcome.best_loss


if __name__ == "__main__":
    register_resolvers()
    try:
        check_group_choices(sys.argv[1:], CONF_DIR)
        if wants_help(sys.argv[1:]):
            print(app_help(sys.argv[1:], CONF_DIR), end="")
            sys.exit(0)
    except (ConfigError, HydraException) as err:
        print(f"error: {err}".splitlines()[0], file=sys.stderr)
        sys.exit(2)
    main()
