"""`python train.py --help`, written here because Hydra's own help lists every option of every config group, its
plugins' too, deep-copying its config repository for each query: about 80% of a 1.5-2 s `--help` on a 2-core CPU
(docs/benchmarks.md). This one lists conf/'s groups from the directory and composes the config once."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from atheria.config.overrides import parse_command_line
from atheria.config.validate import GROUPS

HELP_FLAGS = ("--help", "-h")
USAGE = """Atheria: long, unattended training runs of QCA laws and GPT-2 + LoRA on time-limited GPUs.
The same command continues a run after its session ends (ckpt_path=last, the default).

    python train.py [key=value ...]               one run, e.g. preset=long platform=colab_pro
    python train.py -m key=a,b [key=c,d ...]      a sweep over every combination; rerun it to resume it
    python train.py --cfg job --resolve [...]     print the composed config, interpolations resolved, and exit
    python train.py --hydra-help                  Hydra's own flags (--multirun, --cfg, --info, ...)
    atheria --help                                status, stop, estimate, export, render, generate

A key the config lacks is refused, except new Trainer or logger arguments (+trainer.KEY=value) and hydra.* keys.
"""


def wants_help(argv: Sequence[str]) -> bool:
    """True when the command line asks for this help."""
    return any(arg in HELP_FLAGS for arg in argv)


def group_options(conf_dir: Path) -> dict[str, list[str]]:
    """Each config group a user picks from (group=option), with its options: the yaml files in conf/{group}/."""
    return {group: sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))
            for group in (*GROUPS, "hydra/launcher") if (conf_dir / group).is_dir()}


def app_help(argv: Sequence[str], conf_dir: Path) -> str:
    """The help text: usage, the config groups and their options, and the config composed with the overrides in
    `argv` (unresolved, as Hydra's help shows it; secret-looking values masked)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from atheria.config.secrets import redacted

    overrides = parse_command_line(argv).overrides
    with initialize_config_dir(str(conf_dir), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    groups = "\n".join(f"{group}: {', '.join(options)}" for group, options in group_options(conf_dir).items())
    given = f" with {' '.join(overrides)}" if overrides else ""
    return (f"{USAGE}\n== Config groups (group=option) ==\n{groups}\n\n"
            f"== Config{given} (any key can be overridden: key=value) ==\n"
            f"{OmegaConf.to_yaml(redacted(cfg, resolve=False))}")
