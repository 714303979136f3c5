"""layout: every path of an experiment under a root, and the experiment a checkpoint file belongs to."""
from __future__ import annotations

from atheria.storage.layout import Layout


def test_paths_of_one_experiment() -> None:
    layout = Layout("gs://bucket/runs", "exp")
    assert layout.checkpoints == "gs://bucket/runs/checkpoints/exp"
    assert layout.logs == "gs://bucket/runs/logs/exp"
    assert layout.exports == "gs://bucket/runs/exports"
    assert layout.renders == "gs://bucket/runs/renders/exp"
    assert layout.rel("checkpoints", "last.ckpt") == "checkpoints/exp/last.ckpt"
    assert layout.rel("exports", "exp_model.pt") == "exports/exp_model.pt"
    assert Layout.all_logs("/data/") == "/data/logs"


def test_a_checkpoint_names_its_experiment(tmp_path, monkeypatch) -> None:
    ckpts = tmp_path / "out" / "checkpoints" / "exp"
    ckpts.mkdir(parents=True)
    (ckpts / "last.ckpt").write_bytes(b"x")
    assert Layout.of_checkpoint(str(ckpts / "last.ckpt")) == Layout(str(tmp_path / "out"), "exp")
    monkeypatch.chdir(ckpts)
    assert Layout.of_checkpoint("last.ckpt") == Layout(str(tmp_path / "out"), "exp")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "link.ckpt").symlink_to(ckpts / "last.ckpt")
    assert Layout.of_checkpoint(str(tmp_path / "elsewhere" / "link.ckpt")) == Layout(str(tmp_path / "out"), "exp")
    assert Layout.of_checkpoint(str(tmp_path / "loose.ckpt")) is None
