"""The package's own requirement on torch keeps a preinstalled build (Colab's and Kaggle's CUDA torch) as it is."""
import json
import subprocess
import sys
from importlib.metadata import requires, version

import pytest
from packaging.requirements import Requirement

from tests.helpers import REPO


def test_the_torch_requirement_is_open_to_any_recent_build():
    (torch,) = [Requirement(r) for r in requires("atheria") or [] if Requirement(r).name == "torch"]
    assert all(spec.operator == ">=" for spec in torch.specifier), torch  # no pin, no upper bound
    for build in ("2.9.0+cu126", "2.13.0+cpu", "2.13.0"):  # Colab's and Kaggle's CUDA builds carry a local label
        assert torch.specifier.contains(build), build


@pytest.mark.slow
def test_installing_the_package_beside_an_installed_torch_installs_no_torch(tmp_path):
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", str(report),
                           "-e", str(REPO)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    installed = [item["metadata"]["name"] for item in json.loads(report.read_text())["install"]]
    assert installed == ["atheria"], (installed, version("torch"))
