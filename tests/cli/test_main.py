"""The `atheria` entry points: every command has --help, help stays light (no torch, no Lightning), the console
script and `python -m atheria` both work, and overrides may sit among estimate's options."""
import os
import shutil
import subprocess
import sys

import pytest

from atheria.cli.main import COMMANDS, main, parse
from tests.helpers import REPO


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: atheria {command} ")


def test_help_imports_neither_torch_nor_lightning():
    probe = ("import sys\nfrom atheria.cli.main import main\n"
             "for argv in (['--help'], ['status', '--help'], ['stop', '--help'], ['estimate', '--help']):\n"
             "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lightning', 'hydra', 'fsspec'}))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, text=True, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("launcher", [["atheria"], [sys.executable, "-m", "atheria"]])
def test_console_script_and_module_run_and_reject_unknown_commands(launcher, tmp_path):
    if shutil.which(launcher[0]) is None:
        pytest.skip("the atheria console script is not installed (pip install -e .)")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ok = subprocess.run([*launcher, "--help"], cwd=tmp_path, env=env, text=True, capture_output=True, timeout=60)
    assert ok.returncode == 0 and all(name in ok.stdout for name in COMMANDS)
    bad = subprocess.run([*launcher, "nosuch"], cwd=tmp_path, env=env, text=True, capture_output=True, timeout=60)
    assert bad.returncode == 2 and "invalid choice: 'nosuch'" in bad.stderr


def test_overrides_may_come_before_between_and_after_estimate_options():
    args = parse(["estimate", "preset=long", "--episodes", "2", "model=mlp", "--cells-per-second", "5", "seed=1"])
    assert args.overrides == ["preset=long", "model=mlp", "seed=1"]
    assert args.episodes == 2 and args.cells_per_second == 5.0
    with pytest.raises(SystemExit):
        parse(["status", "root", "extra=1"])
