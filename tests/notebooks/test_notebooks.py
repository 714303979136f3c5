"""The Colab and Kaggle notebooks: committed clean (no outputs, one parameters cell, every code cell explained), and
executed headless (nbclient + ipykernel) on the CPU with a tiny run, twice, as two sessions of a platform would:
the first trains (Kaggle: and is interrupted) and shows a checkpoint, a status and the summary plot; the second
resumes on a fresh local disk, from Drive (Colab) or from the first session's output attached as input (Kaggle)."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import pytest

from tests.helpers import REPO, TINY, load, metrics

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = {"colab": REPO / "notebooks" / "atheria_colab.ipynb", "kaggle": REPO / "notebooks" / "atheria_kaggle.ipynb"}
DEFAULT_PLATFORM = {"colab": "platform=colab_free", "kaggle": "platform=kaggle"}
SKIP_SETUP = {"colab": "IN_COLAB", "kaggle": "ON_KAGGLE"}  # the switch that skips Drive, clone and install
NAME = "MLP_8ch_D4"
TINY_RUN = " ".join(("model=mlp", *TINY))


def parameters_cell(nb) -> int:
    """Index of the one cell tagged 'parameters' (papermill's convention)."""
    found = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(found) == 1, f"expected one cell tagged 'parameters', found {len(found)}"
    return found[0]


@pytest.mark.parametrize("which", sorted(NOTEBOOKS))
def test_committed_notebook_is_clean_and_explained(which: str) -> None:
    nb = nbformat.read(NOTEBOOKS[which], as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [] and cell.execution_count is None, f"cell {i} has outputs: strip them"
        assert i > 0 and nb.cells[i - 1].cell_type == "markdown", f"cell {i} has no Markdown line before it"
        assert len(cell.source.splitlines()) <= 14, f"cell {i} is longer than 14 lines"
    params = nb.cells[parameters_cell(nb)].source
    assert DEFAULT_PLATFORM[which] in params and f"{SKIP_SETUP[which]} = True" in params
    if which == "colab":
        assert "drive.mount('/content/drive')" in "".join(c.source for c in nb.cells)


@pytest.fixture
def kernel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A python3 kernel that is this interpreter, whatever kernels the machine has installed."""
    kernel_dir = tmp_path / "jupyter" / "kernels" / "python3"
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("WANDB_MODE", "offline")


def execute(which: str, cwd: Path, interrupt_when: Optional[Path] = None, **params: object):
    """Run the notebook headless with `params` injected after its parameters cell; the executed notebook.
    With `interrupt_when`, the kernel is interrupted as Jupyter's stop button does, once that file exists."""
    nb = nbformat.read(NOTEBOOKS[which], as_version=4)
    injected = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in params.items()))
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(parameters_cell(nb) + 1, injected)
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    if interrupt_when is not None:
        threading.Thread(target=interrupt_once, args=(client, interrupt_when), daemon=True).start()
    return client.execute()


def interrupt_once(client, trigger: Path, timeout: float = 150) -> None:
    """Wait for `trigger` to appear, then interrupt the kernel (SIGINT to its process group, as Jupyter does)."""
    deadline = time.monotonic() + timeout
    while not trigger.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    asyncio.run(client.km.interrupt_kernel())


def text_of(nb) -> str:
    """Everything the cells printed (stdout, stderr, results), in order."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text") or out.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def shown_pngs(nb) -> list[bytes]:
    """The PNG images the notebook displayed."""
    return [base64.b64decode(out["data"]["image/png"]) for cell in nb.cells for out in cell.get("outputs", [])
            if "image/png" in out.get("data", {})]


def assert_session(nb, root: Path, episodes: int) -> None:
    """The notebook trained to `episodes`, showed the status and both pictures; the files are there and sound."""
    from PIL import Image

    out = text_of(nb)
    ckpt = root / "checkpoints" / NAME / "last.ckpt"
    assert ckpt.is_file(), out
    assert load(ckpt)["global_step"] == episodes
    status = json.loads((root / "logs" / NAME / "status.json").read_text())
    assert (status["state"], status["episode"]) == ("completed", episodes)
    assert f"{NAME}  completed" in out and f"episode {episodes}/{episodes}" in out, out
    summary = root / "logs" / NAME / "training_summary.png"
    with Image.open(summary) as img:
        img.load()
        assert img.size[0] > 100 and img.size[1] > 100
    assert summary.read_bytes() in shown_pngs(nb) and len(shown_pngs(nb)) == 2
    assert f"# {NAME}: training report" in out


@pytest.mark.slow
def test_colab_notebook_trains_then_resumes_from_drive(tmp_path: Path, kernel_env: None) -> None:
    """Session 1 trains 4 episodes, mirrored to a stand-in for Drive; session 2, on an empty local disk, resumes
    from Drive and trains to 6."""
    drive = tmp_path / "drive"
    first = execute("colab", tmp_path, REPO_DIR=str(REPO), IN_COLAB=False,
                    OVERRIDES=f"{TINY_RUN} storage.local={tmp_path / 'content1'} storage.remote={drive}")
    assert "starting fresh" in text_of(first)
    assert_session(first, tmp_path / "content1", 4)
    assert (drive / "checkpoints" / NAME / "last.ckpt").is_file()

    second = execute("colab", tmp_path, REPO_DIR=str(REPO), IN_COLAB=False,
                     OVERRIDES=f"{TINY_RUN} run.total_episodes=6 storage.local={tmp_path / 'content2'} "
                               f"storage.remote={drive}")
    assert "Resuming from episode 4" in text_of(second), text_of(second)
    assert_session(second, tmp_path / "content2", 6)
    assert load(drive / "checkpoints" / NAME / "last.ckpt")["global_step"] == 6


@pytest.mark.slow
def test_kaggle_notebook_stops_on_interrupt_then_resumes_from_an_attached_output(tmp_path: Path,
                                                                                 kernel_env: None) -> None:
    """Session 1 is interrupted mid-run: train.py stops cleanly (saved) and the notebook still shows the status and
    plots. Its output, attached read-only as /kaggle/input would be, is restored by session 2 into a fresh working
    dir, which resumes with the whole metrics history."""
    working1 = tmp_path / "working1"
    first = execute("kaggle", tmp_path, interrupt_when=working1 / "checkpoints" / NAME / "last.ckpt",
                    REPO_DIR=str(REPO), ON_KAGGLE=False,
                    OVERRIDES=f"{TINY_RUN} run.total_episodes=1000 storage.local={working1}")
    out = text_of(first)
    assert "starting fresh" in out and "SIGINT received" in out, out
    status = json.loads((working1 / "logs" / NAME / "status.json").read_text())
    stopped = status["episode"]
    assert status["state"] == "stopped-signal" and 2 <= stopped < 1000, status
    assert load(working1 / "checkpoints" / NAME / "last.ckpt")["global_step"] == stopped
    assert f"{NAME}  stopped-signal" in out and len(shown_pngs(first)) == 2, out

    attached = tmp_path / "input" / "atheria"
    shutil.copytree(working1, attached)
    read_only(attached)
    second = execute("kaggle", tmp_path, REPO_DIR=str(REPO), ON_KAGGLE=False, RESTORE_FROM=str(attached),
                     OVERRIDES=f"{TINY_RUN} run.total_episodes={stopped + 2} storage.local={tmp_path / 'working2'}")
    assert f"Resuming from episode {stopped}" in text_of(second), text_of(second)
    assert_session(second, tmp_path / "working2", stopped + 2)
    assert [int(float(r["episode"])) for r in metrics(tmp_path / "working2", NAME)] == list(range(1, stopped + 3))


def read_only(root: Path) -> None:
    """Drop write permission everywhere under root, as Kaggle's /kaggle/input mounts are."""
    for parent, dirs, files in os.walk(root, topdown=False):
        for entry in [*files, *dirs]:
            path = Path(parent, entry)
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
