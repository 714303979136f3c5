"""`python train.py --help`: Atheria's own help lists the config groups and the composed config, quickly (without
Hydra's per-group repository copies), imports no training stack, and writes nothing."""
import subprocess
import sys

from atheria.config import CONF_DIR
from atheria.config.help import app_help
from tests.helpers import REPO


def test_help_lists_every_group_with_its_options_and_the_config_the_overrides_compose():
    text = app_help(["model=mlp", "qca.steps=7", "-m"], CONF_DIR)
    assert "model: deep_qca, gpt2_lora, mlp, snn_unet, unet" in text
    assert "preset: long, quick, standard" in text and "platform: auto, colab_free, colab_pro, kaggle, local" in text
    assert "task: rl_scheduler, train" in text and "hydra/launcher: parallel, slurm" in text
    assert "== Config with model=mlp qca.steps=7 " in text
    assert "  arch: mlp\n" in text and "  steps: 7\n" in text and "name: ${model.tag}\n" in text


def test_train_py_help_exits_0_without_torch_and_writes_nothing(tmp_path):
    probe = (f"import runpy, sys\nsys.path.insert(0, {str(REPO)!r})\n"
             "sys.argv = ['train.py', 'preset=long', '--help']\n"
             f"try:\n    runpy.run_path({str(REPO / 'train.py')!r}, run_name='__main__')\nexcept SystemExit as done:\n"
             "    print('exit', done.code)\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lightning'}))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, text=True, capture_output=True, timeout=120)
    lines = out.stdout.strip().splitlines()
    assert lines[-2:] == ["exit 0", "[]"], out.stdout[-2000:] + out.stderr
    assert "  total_episodes: 2000\n" in out.stdout  # preset=long composed

    typo = subprocess.run([sys.executable, str(REPO / "train.py"), "preset=lng", "--help"], cwd=tmp_path, text=True,
                          capture_output=True, timeout=120)
    assert typo.returncode == 2 and typo.stderr.strip() == (
        "error: preset='lng' is not a preset option; accepted: long, quick, standard")
    assert list(tmp_path.iterdir()) == []
