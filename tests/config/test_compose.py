"""Every model x preset x platform composes and validates, with the values the contract promises."""
import itertools

import pytest
import torch
from omegaconf import OmegaConf

from atheria.config import CONF_DIR, check_group_choices, validate
from atheria.config.resolvers import detect_platform
from atheria.errors import ConfigError
from tests.helpers import compose_cfg as composed

MODELS = ["unet", "snn_unet", "mlp", "deep_qca", "gpt2_lora"]
PRESETS = {"quick": (100, 32, 5, 20), "standard": (500, 64, 10, 50), "long": (2000, 128, 20, 100)}
PLATFORMS = {"local": (None, "outputs", None), "colab_free": (10, "/content/atheria", "/content/drive/MyDrive/Atheria"),
             "colab_pro": (20, "/content/atheria", "/content/drive/MyDrive/Atheria"),
             "kaggle": (12, "/kaggle/working/atheria", None)}  # 9 on a TPU (test_platform.py)


@pytest.mark.parametrize("model,preset,platform",
                         list(itertools.product(MODELS, PRESETS, [*PLATFORMS, "auto"])))
def test_every_combination_composes_and_validates(model, preset, platform):
    cfg = composed(f"model={model}", f"preset={preset}", f"platform={platform}")
    validate(cfg)
    episodes, grid, save, sync = PRESETS[preset]
    assert (cfg.run.total_episodes, cfg.run.save_every, cfg.run.sync_every) == (episodes, save, sync)
    assert cfg.qca.grid_size == grid
    expected = PLATFORMS[detect_platform() if platform == "auto" else platform]
    assert (cfg.run.max_hours, cfg.storage.local, cfg.storage.remote) == expected
    assert cfg.trainer.max_steps == episodes


def test_the_embedded_default_is_the_first_test_recipe():
    cfg = composed()
    assert (cfg.model.arch, cfg.model.d_state, cfg.model.hidden_channels) == ("unet", 4, 16)
    assert (cfg.qca.grid_size, cfg.qca.steps, cfg.run.total_episodes) == (32, 50, 100)
    assert list(cfg.logger) == ["csv"] and cfg.logger.csv["_target_"].endswith("HistoryCSVLogger")
    assert cfg.ckpt_path == "last"
    assert cfg.name == "UNET_16ch_D4" and cfg.optim.lr == 1e-4


def test_auto_detects_colab_and_kaggle_by_signals_of_their_runtimes_only(tmp_path):
    kaggle_input, none = tmp_path / "kaggle" / "input", "atheria_no_such_module"
    for ours in ("content/atheria", "content/drive", "kaggle/working"):  # folders our own runs create
        (tmp_path / ours).mkdir(parents=True)
    assert detect_platform({"HOME": "/root"}, kaggle_input, none) == "local"
    assert detect_platform({"COLAB_RELEASE_TAG": "release-colab_20240620"}, kaggle_input, none) == "colab_free"
    assert detect_platform({"COLAB_GPU": "1"}, kaggle_input, none) == "colab_free"
    assert detect_platform({}, kaggle_input, "json") == "colab_free"  # google.colab importable (json stands in)
    assert detect_platform({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, kaggle_input, none) == "kaggle"
    assert detect_platform({"KAGGLE_URL_BASE": "https://www.kaggle.com"}, kaggle_input, none) == "kaggle"
    kaggle_input.mkdir()
    assert detect_platform({}, kaggle_input, none) == "kaggle"


def test_curriculum_phases():
    one = composed("experiment=curriculum_phase1")
    two = composed("experiment=curriculum_phase2")
    assert (one.model.hidden_channels, one.qca.grid_size, one.qca.steps, one.optim.lr, one.run.total_episodes) == \
        (32, 32, 50, 1e-4, 500)
    assert (two.model.hidden_channels, two.qca.grid_size, two.qca.steps, two.optim.lr, two.run.total_episodes) == \
        (64, 64, 100, 5e-5, 1000)
    assert two.init_from == one.name and two.qca.gamma == 0.01


def test_sweep_overrides_are_checked_option_by_option():
    check_group_choices(["model=unet,mlp", "preset=quick"], CONF_DIR)
    with pytest.raises(ConfigError, match=r"model='mpl' is not a model option; accepted: deep_qca, gpt2_lora"):
        check_group_choices(["model=unet,mpl"], CONF_DIR)


def test_language_model_reference_settings_and_patience():
    cfg = composed("model=gpt2_lora", "run.patience=3")
    assert (cfg.model.lora_r, cfg.model.lora_alpha, cfg.model.lora_dropout) == (8, 32, 0.1)
    assert list(cfg.model.target_modules) == ["c_attn", "c_proj"] and cfg.optim.lr == 2e-4
    assert list(cfg.optim.betas) == [0.9, 0.98] and cfg.data.batch_size == 16 and cfg.data.block_size == 256
    assert cfg.run.early_stop.patience == 3 and cfg.run.early_stop.monitor == "val/loss"


@pytest.mark.parametrize("override,message", [
    ("model.lora_r=0", "model.lora_r=0 is invalid"),
    ("model.phi_target=12", "model.phi_target=12 is invalid; accepted: a number in (0, 10)"),
    ("data.path=/nowhere/text.txt", "data.path='/nowhere/text.txt' is invalid"),
    ("data.batch_size=1", "data.block_size x data.batch_size = 256 x 1 = 256 tokens per batch, too few for Φ; "
                          "accepted: at least 320 (10 per Φ feature, 32 features at width 768)"),
    ("model.phi_layer=1.5", "model.phi_layer=1.5 is invalid; accepted: null (the middle block) or a hidden-state "
                            "index"),
])
def test_language_model_settings_are_checked(override, message):
    with pytest.raises(ConfigError) as err:
        validate(composed("model=gpt2_lora", override))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_random_gpt2_takes_a_phi_layer_within_its_depth_and_batches_for_its_width():
    validate(composed("model=gpt2_lora", "model.pretrained=null", "model.phi_layer=-3", "data.block_size=16",
                      "data.batch_size=20"))  # 2 layers: hidden states -3..2; width 64: 32 features, 320 tokens
    with pytest.raises(ConfigError, match=r"model.phi_layer=3 is invalid; accepted: null \(the middle block\) or a "
                                          r"hidden-state index in \[-3, 2\] \(0: the embeddings, 2: the last block\)$"):
        validate(composed("model=gpt2_lora", "model.pretrained=null", "model.phi_layer=3"))
    narrow = ("model=gpt2_lora", "model.pretrained=null", "model.n_embd=8", "data.block_size=16")
    validate(composed(*narrow, "data.batch_size=5"))  # width 8: 8 features, 80 tokens
    with pytest.raises(ConfigError, match=r"= 64 tokens per batch, too few for Φ; accepted: at least 80 "):
        validate(composed(*narrow, "data.batch_size=4"))


def test_compiling_the_qca_step_is_a_checked_switch():
    assert composed().qca.compile is False
    validate(composed("qca.compile=true"))
    with pytest.raises(ConfigError, match=r"qca.compile='yes' is invalid; accepted: true or false"):
        validate(composed("qca.compile=yes"))


@pytest.mark.parametrize("launcher,target", [("slurm", "SlurmLauncher"), ("parallel", "JoblibLauncher")])
def test_cluster_and_parallel_launchers_compose(launcher, target):
    cfg = composed(f"hydra/launcher={launcher}", hydra=True)
    assert cfg.hydra.launcher._target_.endswith(target)


def test_the_optuna_search_composes_with_its_space():
    cfg = composed("hparams_search=qca_optuna", hydra=True)
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper") and cfg.hydra.sweeper.direction == "minimize"
    assert set(cfg.hydra.sweeper.params) == {"optim.lr", "model.hidden_channels", "model.d_state"}


@pytest.mark.parametrize("overrides,message", [
    (("run.media_every=-1",),
     "run.media_every=-1 is invalid; accepted: an integer >= 0 (0 = only at each session's end)"),
    (("logger=wandb", "logger.wandb.log_checkpoints=yes"),
     "logger.wandb.log_checkpoints='yes' is invalid; accepted: true or false"),
    *[((removal,), "logger.csv is the run's history (metrics.csv: resumes, `atheria status`, plots and the report "
                   "read it) and cannot be removed or replaced; accepted: logger=wandb, logger=tensorboard or "
                   "logger=[wandb,tensorboard] beside it")
      for removal in ("~logger.csv", "logger.csv=null", "logger.csv._target_=lightning.pytorch.loggers.CSVLogger")],
])
def test_the_dashboard_keys_are_checked(overrides, message):
    with pytest.raises(ConfigError) as err:
        validate(composed(*overrides))
    assert str(err.value) == message
    validate(composed("run.media_every=0", "logger=wandb", "logger.wandb.log_checkpoints=true"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the default batch fills it (tests/qca/test_memory.py)")
def test_the_batch_of_episodes_is_one_on_the_cpu_and_for_a_language_model_and_any_value_given():
    assert composed().qca.batch_size == 1  # no GPU here: gpu_batch gives 1 (on a GPU: fill_batch's)
    assert composed("model=gpt2_lora").qca.batch_size == 1
    assert OmegaConf.to_container(composed("model=gpt2_lora"), resolve=True)["qca"]["batch_size"] == 1
    assert composed("qca.batch_size=4").qca.batch_size == 4
