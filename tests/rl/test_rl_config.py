"""task=rl_scheduler composes with every preset and platform, carries the reference's defaults, and refuses bad rl.*
values in one line naming the key and what is accepted."""
import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from atheria.config import CONF_DIR, check_group_choices
from atheria.errors import ConfigError
from atheria.tasks import check
from tests.helpers import compose, run_train

BASE = ("task=rl_scheduler",)
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("preset,platform", list(itertools.product(["quick", "standard", "long"],
                                                                   ["local", "colab_free", "colab_pro", "kaggle"])))
def test_the_scheduler_composes_with_every_preset_and_platform(tmp_path, preset, platform):
    cfg = compose(tmp_path, f"preset={preset}", f"platform={platform}", base=BASE)
    check(cfg)
    assert cfg.task == "rl_scheduler" and cfg.model.arch == "gpt2_lora" and cfg.name == "RL_ppo_GPT2_LoRA_r8"


def test_the_reference_defaults(tmp_path):
    rl = compose(tmp_path, base=BASE).rl
    assert (rl.algo, rl.lr, rl.n_steps, rl.batch_size, rl.n_epochs, rl.gamma, rl.gae_lambda, rl.clip_range,
            rl.ent_coef, list(rl.net_arch)) == ("ppo", 3e-4, 2048, 64, 10, 0.99, 0.95, 0.2, 0.01, [128, 128])
    assert (rl.save_freq, rl.eval_freq, rl.n_eval_episodes, rl.base) == (10000, 5000, 5, None)
    assert dict(rl.reward) == {"text": 1.0, "phi": 1.0, "text_nats": 0.0015, "phi_units": 0.25}
    assert compose(tmp_path).task == "train"


def test_an_unknown_task_is_refused_before_composing():
    with pytest.raises(ConfigError, match=r"task='rl' is not a task option; accepted: rl_scheduler, train"):
        check_group_choices(["task=rl"], CONF_DIR)


BAD = [
    ("rl.algo=dqn", "rl.algo='dqn'", "ppo, a2c, sac"),
    ("rl.timesteps=0", "rl.timesteps=0", "positive integer"),
    ("rl.inner_steps=-1", "rl.inner_steps=-1", "positive integer"),
    ("rl.max_steps=1.5", "rl.max_steps=1.5", "positive integer"),
    ("rl.lr=0", "rl.lr=0", "positive number"),
    ("rl.clip_range=-0.2", "rl.clip_range=-0.2", "positive number"),
    ("rl.ent_coef=-1", "rl.ent_coef=-1", ">= 0"),
    ("rl.gamma=1.5", "rl.gamma=1.5", "(0, 1]"),
    ("rl.gae_lambda=2", "rl.gae_lambda=2", "[0, 1]"),
    ("rl.net_arch=[0]", "rl.net_arch=[0]", "positive layer widths"),
    ("rl.net_arch=128", "rl.net_arch=128", "positive layer widths"),
    ("rl.eval_freq=0", "rl.eval_freq=0", "positive integer"),
    ("rl.learning_starts=-5", "rl.learning_starts=-5", ">= 0"),
    ("rl.reward.phi=-0.2", "rl.reward.phi=-0.2", ">= 0"),
    ("rl.reward.text_nats=0", "rl.reward.text_nats=0", "a positive number: a typical decision's gain"),
    ("rl.base=/nonexistent/base.ckpt", "rl.base='/nonexistent/base.ckpt'", "existing LM checkpoint"),
    ("model=unet", "model.family='qca'", "model=gpt2_lora"),
    ("init_from=other", "init_from='other'", "rl.base"),
]


@pytest.mark.parametrize("override,names,accepted", BAD, ids=[b[0] for b in BAD])
def test_bad_scheduler_input_names_the_key_and_what_is_accepted(tmp_path, override, names, accepted):
    with pytest.raises(ConfigError) as err:
        check(compose(tmp_path, override, base=BASE))
    message = str(err.value)
    assert "\n" not in message and names in message and accepted in message, message


def test_train_py_refuses_bad_scheduler_input_with_one_line_and_writes_nothing(tmp_path):
    root = tmp_path / "out"
    proc = run_train(root, "rl.algo=dqn", cwd=tmp_path, base=("platform=local", *BASE))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == ["error: rl.algo='dqn' is invalid; accepted: ppo, a2c, sac"]
    assert not root.exists()


def test_checking_a_scheduler_config_imports_no_stable_baselines3(tmp_path):
    code = ("import sys; from pathlib import Path; from atheria.tasks import check; from tests.helpers import compose; "
            f"check(compose(Path({str(tmp_path)!r}), base={BASE!r})); "
            "print('stable_baselines3' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
