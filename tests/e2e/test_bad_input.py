"""Bad input is refused with one line naming the key and what is accepted, a non-zero exit, nothing written."""
import pytest

from tests.helpers import run_train

CASES = [
    ("model=transformer", "model='transformer'", "unet"),
    ("preset=lng", "preset='lng'", "quick"),
    ("platform=colab", "platform='colab'", "colab_free"),
    ("model.arch=cnn", "model.arch='cnn'", "snn_unet"),
    ("model.d_state=0", "model.d_state=0", "positive integer"),
    ("model.hidden_channels=-8", "model.hidden_channels=-8", "positive integer"),
    ("model.d_state=four", "model.d_state='four'", "positive integer"),
    ("qca.steps=0", "qca.steps=0", "positive integer"),
    ("run.total_episodes=0", "run.total_episodes=0", "positive integer"),
    ("optim.lr=-1e-4", "optim.lr=-0.0001", "positive number"),
    ("qca.grid_size=30", "qca.grid_size=30", "multiple of 4"),
    ("qca.normalize=unit", "qca.normalize='unit'", "cap"),
    ("name=../escape", "name='../escape'", "no '/'"),
    ("ckpt_path=/nonexistent/x.ckpt", "ckpt_path='/nonexistent/x.ckpt'", "last, null"),
    ("init_from=nobody", "init_from='nobody'", "checkpoint path"),
]


@pytest.mark.parametrize("override,names,accepted", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_in_one_line(tmp_path, override, names, accepted):
    root = tmp_path / "out"
    proc = run_train(root, override, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and names in lines[0] and accepted in lines[0], lines[0]
    assert not root.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
