"""The command line of train.py, checked before Hydra runs: Hydra's own errors take several lines and exit 1, a sweep
writes its multirun.yaml before any job composes, and Hydra's advice for a misspelled key (`+key=`) adds a key that
nothing reads. Refused here in one line: overrides that do not parse, bad names, keys the config does not have (with
the closest one that it does), sweeps without -m."""
from __future__ import annotations

import argparse
import difflib
import functools
import inspect
import itertools
from pathlib import Path
from typing import Any, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from atheria.config.validate import check_group_choices, check_name
from atheria.errors import ConfigError

ACCEPTED_KEYS = ("accepted: the keys `python train.py --cfg job` prints; new keys, added with +key=, only as arguments "
                 "of what the config builds (trainer.*: lightning.pytorch.Trainer's; a logger's) and under hydra.*")


def parse_command_line(argv: Sequence[str]) -> argparse.Namespace:
    """Hydra's flags and overrides, parsed by the parser hydra.main uses; a bad flag is a one-line ConfigError."""
    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()

    def refuse(message: str) -> None:
        raise ConfigError(f"{message}; see python train.py --help")

    parser.error = refuse  # type: ignore[method-assign]  # argparse would print its usage and exit
    return parser.parse_args(argv)


def check_command_line(argv: Sequence[str], conf_dir: Path) -> None:
    """Refuse, in one line, a command line that Hydra would fail on or silently misread. Composes the config only
    when there are key overrides to check (once per combination of swept config groups)."""
    from hydra.types import RunMode

    args = parse_command_line(argv)
    if sum(map(bool, (args.run, args.multirun, args.cfg, args.info, args.shell_completion))) > 1:
        raise ConfigError("only one of --run, -m/--multirun, --cfg, --info and --shell-completion at a time")
    if args.config_path or args.config_dir or args.experimental_rerun:
        return  # another config than conf/'s: Hydra checks it
    overrides = [_parse(line) for line in args.overrides]
    check_group_choices(args.overrides, conf_dir)
    groups = [o for o in overrides if _is_group(o.key_or_group, conf_dir)]
    keys = [o for o in overrides if o not in groups and not o.is_hydra_override()]
    hydra_keys = [o.input_line for o in overrides if o not in groups and o.is_hydra_override()  # Hydra checks them
                  and not o.is_sweep_override()]
    sweeps = [o.input_line for o in overrides if o.is_sweep_override()]
    if not keys and not hydra_keys and (args.multirun or not sweeps):
        return
    combinations = list(itertools.product(*(_choices(o, conf_dir) for o in groups)))
    for choice in combinations:
        cfg = _compose(conf_dir, args.config_name or "config", [*choice, *hydra_keys])
        if sweeps and not args.multirun and cfg.hydra.mode != RunMode.MULTIRUN:  # hparams_search sets it
            raise ConfigError(f"{sweeps[0]} is a sweep; accepted: -m to run one job per value, a list key=[a,b], "
                              "or a quoted string key='a,b'")
        swept = [line for line, group in zip(choice, groups) if group.is_sweep_override()]
        context = f" with {' '.join(swept)}" if swept else ""
        tree = OmegaConf.to_container(cfg, resolve=False)
        tree.pop("hydra")
        for override in keys:
            _check_key(override, tree, context)


def _parse(line: str) -> Any:
    """One override, parsed by Hydra's grammar; a `name=` that is no name says which names are accepted."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    key, _, value = line.partition("=")
    try:
        override = OverridesParser.create().parse_overrides([line])[0]
    except OverrideParseException as err:
        if key.lstrip("+") == "name":
            check_name(value)
        reason = [text for text in str(err).splitlines() if text.strip() and not text.startswith(("See ", "Error "))]
        raise ConfigError(f"cannot parse {line!r} ({reason[0].strip() if reason else 'bad syntax'}); accepted: "
                          "key=value, +key=value, ++key=value, ~key; quote a value with spaces, non-ASCII letters "
                          "or ()[]{},=: inside the shell's quotes: \"key='a value'\"") from None
    if override.key_or_group == "name" and not override.is_delete():
        for name in override.sweep_string_iterator() if override.is_sweep_override() else [override.value()]:
            if "${" not in str(name):  # an interpolation is checked once resolved (validate)
                check_name(name)
    return override


def _is_group(key: str, conf_dir: Path) -> bool:
    """True for a config group choice (model=mlp, hydra/launcher=parallel), False for a key (model.d_state=8)."""
    return "/" in key or ("." not in key and (conf_dir / key.partition("@")[0]).is_dir())


def _choices(override: Any, conf_dir: Path) -> list[str]:
    """The group overrides one job of each value of `override` composes with (a single one unless swept)."""
    from hydra.core.override_parser.types import Glob

    if not override.is_sweep_override():
        return [override.input_line]
    value = override.value()
    if isinstance(value, Glob):
        options = value.filter(sorted(p.stem for p in (conf_dir / override.key_or_group).glob("*.yaml")))
    else:
        options = list(override.sweep_string_iterator())
    return [f"{override.get_key_element()}={option}" for option in options]


def _compose(conf_dir: Path, config_name: str, overrides: list[str]) -> DictConfig:
    """The config these group overrides compose (with Hydra's node); Hydra's errors as one-line ConfigErrors."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(str(conf_dir), version_base="1.3"):
            return compose(config_name, overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        cause = str(err.__cause__ or "").splitlines()[:1]  # Hydra's reason, e.g. "Key 'chdr' not in 'JobConf'"
        lines = [text.strip().rstrip(".") for text in [*str(err).splitlines(), *cause] if text.strip()]
        raise ConfigError("; ".join(lines)) from None


def _check_key(override: Any, tree: dict, context: str) -> None:
    """Refuse a key override of a key the config lacks (unless it is a new argument of a built object, with +), or an
    addition (+key) of a key it has."""
    key = override.key_or_group
    node, path, rest = _deepest(tree, key)
    if not rest:
        if override.is_add():
            raise ConfigError(f"+{key} adds a key the config already has; accepted: {key}=VALUE (or ++{key}=VALUE)")
        return
    arguments = _arguments(node["_target_"]) if isinstance(node, dict) and "_target_" in node else frozenset()
    if not override.is_delete() and (arguments is None or rest[0] in arguments):
        if override.is_add() or override.is_force_add():
            return
        raise ConfigError(f"{key} is not in the config yet; accepted: +{key}=VALUE adds it (an argument of "
                          f"{node['_target_']})")
    if node is None and path:
        raise ConfigError(f"{key}: {path} is null in the config{context}; accepted: set it whole, "
                          f"{path}={{key:value,...}}")
    raise ConfigError(f"{key} is not a config key{context}; did you mean {_closest(key, tree, node, path, arguments)}? "
                      f"{ACCEPTED_KEYS}")


def _deepest(tree: dict, key: str) -> tuple[Any, str, list[str]]:
    """The deepest node of `tree` on the dotted `key`'s path, that node's path, and the parts of `key` below it."""
    node, parts = tree, key.split(".")
    for depth, part in enumerate(parts):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return node, ".".join(parts[:depth]), parts[depth:]
    return node, key, []


@functools.lru_cache(maxsize=None)
def _arguments(target: str) -> Optional[frozenset[str]]:
    """The keyword arguments the `_target_` takes; None when it takes any (**kwargs). Imports it (Lightning: seconds),
    only for a key the config lacks."""
    from hydra.utils import get_object

    built = get_object(target)
    inits = [c.__dict__["__init__"] for c in built.__mro__ if "__init__" in c.__dict__] if isinstance(built, type) \
        else [built]
    for init in inits:  # an __init__(*args, **kwargs) only hands them to its parent's
        parameters = [p for p in inspect.signature(init).parameters.values() if p.name != "self"]
        if any(p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
            break
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def _closest(key: str, tree: dict, node: Any, path: str, arguments: Optional[frozenset[str]]) -> str:
    """The known key closest to `key`: among its siblings when its parent exists, else among all keys."""
    if path and isinstance(node, dict):
        siblings = [f"{path}.{name}" for name in (*node, *(arguments or ()))]
        return max(siblings, key=lambda known: difflib.SequenceMatcher(None, key, known).ratio())
    match = difflib.get_close_matches(key, list(_paths(tree)), n=1, cutoff=0.0)
    return match[0]


def _paths(node: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a config tree (inner nodes too)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    return [p for k, v in items for p in (f"{prefix}{k}", *_paths(v, f"{prefix}{k}."))]
