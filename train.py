"""Atheria's entry point: check the command line, compose the Hydra config, hand it to atheria.runner.

    python train.py                                    # a short QCA run on the CPU
    python train.py preset=long platform=colab_pro     # a 20 h Colab Pro session; rerun to continue
    python train.py -m model.d_state=4,8 model.hidden_channels=32,64
"""
from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from omegaconf import DictConfig


def main(cfg: DictConfig) -> Optional[float]:
    """Run one experiment (a job of a sweep under -m); returns its best smoothed loss, a sweeper's objective.
    A bad config exits 2 with a one-line message before anything is written."""
    from atheria.errors import ConfigError
    from atheria.runner import train

    try:
        outcome = train(cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if outcome.code:
        sys.exit(outcome.code)
    return outcome.best_loss


def cli() -> None:
    """Refuse a bad command line in one line before Hydra runs (and writes), answer --help, else run Hydra's app."""
    import hydra
    from hydra.errors import HydraException

    from atheria.config import CONF_DIR, check_command_line, register_resolvers
    from atheria.config.help import app_help, wants_help
    from atheria.config.secrets import refuse_secret_overrides
    from atheria.errors import ConfigError

    # W&B in this process uses a service of its own, not one a parent names in WANDB_SERVICE (a notebook that ran
    # wandb): a kill of this run would leave its run open in the parent's service, which refuses the resume.
    os.environ.pop("WANDB_SERVICE", None)
    register_resolvers()
    try:
        refuse_secret_overrides(sys.argv[1:])  # before Hydra records them (a sweep's multirun.yaml)
        check_command_line(sys.argv[1:], CONF_DIR)
        if wants_help(sys.argv[1:]):
            print(app_help(sys.argv[1:], CONF_DIR), end="")
            sys.exit(0)
    except (ConfigError, HydraException) as err:
        print(f"error: {err}".splitlines()[0], file=sys.stderr)
        sys.exit(2)
    hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")(main)()


if __name__ == "__main__":
    try:
        cli()
    except KeyboardInterrupt:  # Ctrl+C before training (importing, composing); the training loop stops on its own
        print("interrupted", file=sys.stderr)
        sys.exit(130)
