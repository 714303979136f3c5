"""Rebuilding a module from a checkpoint safely, and TorchScript export: a round trip per architecture, a clear
reason when a law cannot be exported, a verification that can fail, the command, and the end-of-run export."""
import json
import os

import pytest
import torch
from torch import Tensor, nn

from atheria.cli.main import main
from atheria.families.loading import load_module
from atheria.models import ARCHITECTURES
from atheria.models.base import Law
from atheria.modules.export import META_NAME, ExportError, export_law, script, verify
from atheria.storage.finder import CorruptCheckpoint
from tests.helpers import load, train_in_process

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")


def odd_state(law, seed=1):
    """A random state on a non-square grid other than the one the export verified on."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 2 * law.d_state, 3 * law.grid_multiple, 5 * law.grid_multiple, generator=g)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_each_architecture_round_trips_through_a_checkpoint_and_torchscript(tmp_path, checkpoint, arch):
    ckpt = checkpoint(arch)
    module, raw = load_module(ckpt)
    assert raw["global_step"] == 5 and not module.training
    torch.testing.assert_close(module.state_dict(), raw["state_dict"], rtol=0, atol=0, equal_nan=True)
    path = str(tmp_path / "law.pt")
    module.export_torchscript(path)
    extra = {META_NAME: ""}
    exported = torch.jit.load(path, _extra_files=extra)
    meta = json.loads(extra[META_NAME])
    assert meta["arch"] == arch and meta["d_state"] == 2 and meta["grid_multiple"] == module.law.grid_multiple
    x = odd_state(module.law)
    with torch.no_grad():
        delta, memory = module.law(x)
        got, got_memory = exported(x, None)
        assert delta.abs().max() > 1e-2, "weights too small for the comparison to mean anything"
        torch.testing.assert_close(got, delta, rtol=1e-4, atol=1e-6)
        assert len(got_memory) == len(memory) == (3 if arch == "snn_unet" else 0)
        torch.testing.assert_close(exported(x, got_memory)[0], module.law(x, memory)[0], rtol=1e-4, atol=1e-6)
    assert sorted(os.listdir(tmp_path)) == ["law.pt", "out"], "a temporary file was left behind"


class Unscriptable(Law):
    """A law TorchScript cannot compile (a lambda in forward)."""

    name = "ODD"
    grid_multiple = 1

    def __init__(self) -> None:
        super().__init__(1, 1)
        self.gain = nn.Parameter(torch.ones(1))

    def forward(self, x: Tensor, memory=None):
        return x * self.gain, list(map(lambda t: t, []))


def test_a_law_that_cannot_be_scripted_fails_with_a_clear_reason_and_writes_nothing(tmp_path):
    with pytest.raises(ExportError) as error:
        export_law(Unscriptable(), str(tmp_path / "odd.pt"), {})
    message = str(error.value)
    assert message.startswith("ODD cannot be compiled to TorchScript: ") and "\n" not in message
    assert os.listdir(tmp_path) == []


def test_verification_fails_when_the_file_does_not_reproduce_the_law(tmp_path, checkpoint):
    law = load_module(checkpoint("mlp"))[0].law
    other = load_module(checkpoint("mlp", name="other", seed=7))[0].law
    path = str(tmp_path / "other.pt")
    script(other).save(path)
    with pytest.raises(ExportError, match="does not reproduce the eager law: output 0 differs"):
        verify(path, law, odd_state(law))


def test_loading_refuses_unknown_families_incomplete_and_malicious_checkpoints(tmp_path, checkpoint):
    ckpt = load(checkpoint("mlp"))
    cases = {"family.ckpt": {**ckpt, "hyper_parameters": {**ckpt["hyper_parameters"], "family": "rnn"}},
             "weightless.ckpt": {"global_step": 1, "hyper_parameters": ckpt["hyper_parameters"]},
             "wrong.ckpt": {**ckpt, "hyper_parameters": {**ckpt["hyper_parameters"], "hidden_channels": 4}}}
    reasons = {"family.ckpt": "model family 'rnn' is unknown; known: qca",
               "weightless.ckpt": "has no hyper_parameters and state_dict",
               "wrong.ckpt": "does not rebuild a QCAModule"}
    for name, content in cases.items():
        torch.save(content, tmp_path / name)
        with pytest.raises(CorruptCheckpoint, match=reasons[name]):
            load_module(tmp_path / name)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({**ckpt, "x": Evil()}, tmp_path / "evil.ckpt")
    with pytest.raises(CorruptCheckpoint):
        load_module(tmp_path / "evil.ckpt")
    assert not marker.exists()


def test_export_command_writes_beside_the_runs_own_export_and_fails_in_one_line(tmp_path, checkpoint, capsys):
    ckpt = checkpoint("snn_unet")
    own = tmp_path / "out" / "exports" / "SNN_UNET_8ch_D2_model.pt"  # what the run exported of its final law
    own.parent.mkdir()
    own.write_bytes(b"the run's own export")
    assert main(["export", str(ckpt)]) == 0
    target = tmp_path / "out" / "exports" / "SNN_UNET_8ch_D2_best-final_model.pt"
    assert target.is_file() and str(target) in capsys.readouterr().out
    assert own.read_bytes() == b"the run's own export"
    assert main(["export", str(ckpt), "--out", str(tmp_path / "mine.pt")]) == 0
    assert (tmp_path / "mine.pt").is_file()
    assert main(["export", str(tmp_path / "missing.ckpt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "missing.ckpt is not a checkpoint file" in err and err.count("\n") == 1


@pytest.mark.slow
def test_a_completed_run_exports_its_final_law_and_mirrors_it(tmp_path, capsys):
    root, remote = tmp_path / "out", tmp_path / "remote"
    assert train_in_process(root, "model=deep_qca", f"storage.remote={remote}") == 0
    exported = root / "exports" / "DEEP_QCA_8ch_D4_model.pt"
    assert f"Exported the trained model (TorchScript, verified) to {exported}" in capsys.readouterr().out
    assert (remote / "exports" / exported.name).read_bytes() == exported.read_bytes()
    module, _ = load_module(root / "checkpoints" / "DEEP_QCA_8ch_D4" / "last.ckpt")
    x = odd_state(module.law)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(exported))(x, None)[0], module.law(x)[0], rtol=1e-4, atol=0.0)
