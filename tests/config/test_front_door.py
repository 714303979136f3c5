"""check_command_line and the value checks behind train.py's front door: which keys it takes, what it suggests,
and the names and session starts validate() accepts."""
import time

import pytest

from atheria.config import CONF_DIR, check_command_line, validate
from atheria.config.validate import NAME_MAX_CHARS, check_name
from atheria.errors import ConfigError
from tests.helpers import compose_cfg as composed


@pytest.mark.parametrize("argv", [
    ["++optim.lr=1e-3", "model.d_state=8"],               # ++ on a key the config has
    ["+trainer.profiler=simple"],                         # a new argument of lightning.pytorch.Trainer
    ["logger=wandb", "+logger.wandb.entity=me"],          # WandbLogger takes any keyword (wandb.init's)
    ["+logger.csv.flush_logs_every_n_steps=5"],           # HistoryCSVLogger(*args, **kwargs) hands them to CSVLogger
    ["logger=[wandb,tensorboard]"],                       # several loggers at once (a list, not a sweep)
    ["hydra.job.chdir=false"],                            # Hydra's own key, checked by Hydra
    ["-m", "model=unet,mlp", "model.d_state=4,8"],        # a sweep: every job's keys exist
    ["-m", "model=glob(*)", "qca.steps=3"],
    ["name=${model.tag}_v2", "run.early_stop={monitor:val/loss,patience:3,min_delta:0.01}"],
    ["--cfg", "job", "--resolve", "model=gpt2_lora", "model.lora_r=4"],
])
def test_the_front_door_takes_what_hydra_and_the_run_use(argv):
    check_command_line(argv, CONF_DIR)


@pytest.mark.parametrize("argv,says", [
    (["sead=1"], "sead is not a config key; did you mean seed?"),
    (["qcaa.steps=3"], "did you mean qca.steps?"),
    (["model.dstate=8"], "did you mean model.d_state?"),
    (["+trainer.acumulate_grad_batches=2"], "did you mean trainer.accumulate_grad_batches?"),
    (["trainer.profiler=simple"], "trainer.profiler is not in the config yet; accepted: +trainer.profiler=VALUE"),
    (["+logger.csv.flush_every=5"], "logger.csv.flush_every is not a config key; did you mean logger.csv."),
    (["~optim.foo"], "optim.foo is not a config key"),
    (["+run.early_stop.monitor=val/loss"], "run.early_stop is null in the config; accepted: set it whole"),
    (["-m", "model=unet,gpt2_lora", "model.lora_r=4"], "model.lora_r is not a config key with model=unet;"),
    (["hydra.job.chdr=true"], "Key 'chdr' not in 'JobConf'"),
    (["--cfg", "job", "-m", "model.d_state=4,8"], "only one of --run, -m/--multirun, --cfg"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["model=unet,mlp"], "model=unet,mlp is a sweep; accepted: -m"),
    (["logger=[wandb,tensorbord]"], "logger='tensorbord' is not a logger option; accepted: csv, tensorboard, wandb"),
    (["name=a b"], "name='a b' is invalid"),
])
def test_the_front_door_refuses_in_one_line(argv, says):
    with pytest.raises(ConfigError) as err:
        check_command_line(argv, CONF_DIR)
    assert says in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_a_name_may_be_as_long_as_its_files_allow():
    check_name("x" * NAME_MAX_CHARS)
    with pytest.raises(ConfigError, match=f"up to {NAME_MAX_CHARS} ASCII letters"):
        check_name("x" * (NAME_MAX_CHARS + 1))


STARTS = [(None, True), (time.time() - 3600, True), (time.time() + 30, True),  # a little clock skew is fine
          (time.time() + 3600, False), (float("nan"), False), (float("inf"), False), (-5, False), ("abc", False),
          (True, False)]


@pytest.mark.parametrize("start,ok", STARTS, ids=["null", "an-hour-ago", "30s-ahead", "an-hour-ahead", "nan", "inf",
                                                   "negative", "text", "bool"])
def test_session_start_is_a_past_epoch_time(start, ok):
    cfg = composed()
    cfg.run.session_start = start
    if ok:
        validate(cfg)
    else:
        with pytest.raises(ConfigError, match=r"run.session_start=.* is invalid; accepted: null .* not in the future"):
            validate(cfg)
