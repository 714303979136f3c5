"""`startup`: commands that do not train must not pay for importing the training stack. Wall time of
`python train.py --help` and `atheria status --help` against `python -c "import lightning"` alone, an empty
interpreter, and the --help of an empty Hydra app (what Hydra's own help costs: it lists every config group of every
installed Hydra plugin, which is why train.py answers --help itself, atheria/config/help.py), runs interleaved, the
median reported; and whether the two commands import torch at all.

    python -m bench.startup [--quick]

`atheria` is the console script when it is on PATH, else `python -m atheria`; every command runs with the repository
on PYTHONPATH, so the console script imports this working tree's code whatever the install points to.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from bench.common import REPO, median, note, parse_quick, result

HEAVY = ("torch", "lightning")
EMPTY_HYDRA_APP = """import hydra

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg):
    pass

main()
"""


def commands(hydra_app: Path) -> dict[str, tuple[str, list[str]]]:
    """The timed commands by result name: (what a user types, the command line run); `hydra_app` is an empty
    Hydra app's file."""
    script = shutil.which("atheria")
    atheria = ("atheria", [script]) if script else ("python -m atheria", [sys.executable, "-m", "atheria"])
    return {"train_help": ("python train.py --help", [sys.executable, str(REPO / "train.py"), "--help"]),
            "status_help": (f"{atheria[0]} status --help", [*atheria[1], "status", "--help"]),
            "import_lightning": ('python -c "import lightning"', [sys.executable, "-c", "import lightning"]),
            "python": ('python -c "pass"', [sys.executable, "-c", "pass"]),
            "empty_hydra_app_help": ("an empty Hydra app --help", [sys.executable, str(hydra_app), "--help"])}


def environment(**extra: str) -> dict[str, str]:
    """The commands' environment: ours, the repository first on PYTHONPATH, plus `extra`."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH")))),
            **extra}


def wall_seconds(cmd: list[str]) -> float:
    """Seconds from launch to exit of one run of cmd (which must succeed)."""
    env = environment()
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def imports_heavy(cmd: list[str]) -> bool:
    """True when cmd imports torch or lightning (read from Python's -X importtime report)."""
    report = subprocess.run(cmd, cwd=REPO, env=environment(PYTHONPROFILEIMPORTTIME="1"), check=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True).stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in report.splitlines() if line.startswith("import time:")}
    return any(name in imported for name in HEAVY)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Time every command `runs` times, interleaved; report medians and whether the commands import torch."""
    runs = 3 if parse_quick(__doc__.splitlines()[0], argv) else 10
    with tempfile.TemporaryDirectory(prefix="atheria-bench-startup-") as work:
        hydra_app = Path(work) / "app.py"
        hydra_app.write_text(EMPTY_HYDRA_APP)
        cmds = commands(hydra_app)
        times: dict[str, list[float]] = {name: [] for name in cmds}
        for _ in range(runs):
            for name, (_, cmd) in cmds.items():
                times[name].append(wall_seconds(cmd))
    for name, (label, _) in cmds.items():
        note(f"  {label:30s} median {median(times[name]):.2f} s of {runs} "
             f"({', '.join(f'{t:.2f}' for t in times[name])})")
    for name in cmds:
        result(f"startup.{name}", median(times[name]), "s")
    for name in ("train_help", "status_help"):
        result(f"startup.{name}.imports_torch", float(imports_heavy(cmds[name][1])), "bool")


if __name__ == "__main__":
    main()
