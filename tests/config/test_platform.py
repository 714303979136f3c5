"""An explicit Colab or Kaggle platform on a machine that is not that runtime is refused in one line naming
platform.force, the flag that confirms it; auto and local never are. Each platform's traits (runtime, session clock,
flush) are keys of its file, and what reads them follows them."""
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from atheria.config import CONF_DIR, check_runtime, validate
from atheria.config.resolvers import TPU_VARIABLES, detect_platform, detect_tpu
from atheria.errors import ConfigError
from tests.helpers import compose_cfg as composed

NOT_A_RUNTIME = [("colab_free", None), ("colab_pro", None), ("colab_pro", "kaggle"), ("kaggle", None),
                 ("kaggle", "colab")]


@pytest.mark.parametrize("platform,here", NOT_A_RUNTIME)
def test_a_platform_of_another_runtime_is_refused_naming_the_way_out(platform, here):
    with pytest.raises(ConfigError) as err:
        check_runtime(composed(f"platform={platform}"), detect=lambda: here)
    runtime = "Kaggle" if platform == "kaggle" else "Colab"
    message = str(err.value)
    assert message.startswith(f"platform={platform} but this machine is not a {runtime} runtime (no ")
    assert "platform=local or platform=auto" in message and "platform.force=true" in message and "\n" not in message


@pytest.mark.parametrize("platform,here", NOT_A_RUNTIME)
def test_platform_force_confirms_it(platform, here):
    check_runtime(composed(f"platform={platform}", "platform.force=true"), detect=lambda: here)


@pytest.mark.parametrize("platform,here", [("colab_free", "colab"), ("colab_pro", "colab"), ("kaggle", "kaggle"),
                                           ("local", None), ("local", "colab"), ("auto", None)])
def test_the_matching_runtime_auto_and_local_are_accepted(platform, here):
    check_runtime(composed(f"platform={platform}"), detect=lambda: here)


def test_the_platform_files_name_their_runtime_and_force_is_off_by_default():
    assert [composed(f"platform={p}").platform.runtime for p in ("colab_free", "colab_pro", "kaggle", "local")] == \
        ["colab", "colab", "kaggle", None]
    assert composed("platform=colab_pro").platform.force is False


@pytest.mark.parametrize("override,message", [("platform.force=yes", "platform.force='yes' is invalid; accepted: "
                                                                     "true or false"),
                                              ("platform.runtime=vertex", "platform.runtime='vertex' is invalid; "
                                                                          "accepted: colab, kaggle or null")])
def test_force_and_runtime_values_are_checked(override, message):
    with pytest.raises(ConfigError) as err:
        validate(composed(override))
    assert str(err.value) == message


TRAITS = {"local": ("process", None), "colab_free": ("runtime", "drive"), "colab_pro": ("runtime", "drive"),
          "kaggle": ("runtime", None)}


@pytest.mark.parametrize("platform", [*TRAITS, "auto"])
def test_each_platform_names_its_session_clock_and_flush(platform):
    cfg = composed(f"platform={platform}")
    assert (cfg.platform.session_clock, cfg.platform.flush) == TRAITS[detect_platform() if platform == "auto"
                                                                      else platform]


def test_every_platform_file_sets_every_key_auto_takes_from_it():
    def keys(node, prefix=""):
        return {k for key, v in node.items()
                for k in (keys(v, f"{prefix}{key}.") if OmegaConf.is_dict(v) else {f"{prefix}{key}"})}

    wanted = keys(OmegaConf.load(CONF_DIR / "platform" / "auto.yaml"))
    for name in TRAITS:
        assert keys(OmegaConf.load(CONF_DIR / "platform" / f"{name}.yaml")) == wanted, name


@pytest.mark.parametrize("override,message", [
    ("platform.session_clock=wall", "platform.session_clock='wall' is invalid; accepted: runtime (the budget counts "
                                    "from the runtime's start) or process (from this process's start)"),
    ("platform.flush=ftp", "platform.flush='ftp' is invalid; accepted: drive (flush Google Drive at exit) or null"),
    ("platform.devices=0", "platform.devices=0 is invalid; accepted: a positive number of devices, or auto (every "
                           "visible GPU)")])
def test_the_traits_values_are_checked(override, message):
    with pytest.raises(ConfigError) as err:
        validate(composed(override))
    assert str(err.value) == message


@pytest.mark.parametrize("overrides,origin", [
    (["platform=kaggle"], "from the kaggle runtime's start"),
    (["platform=colab_pro"], "from the colab_pro runtime's start"),
    (["platform=local"], "from this process's start"),
    (["platform=local", "platform.session_clock=runtime"], "from the local runtime's start")])
def test_a_spent_budget_names_where_the_platforms_session_clock_counts_from(overrides, origin):
    from atheria.runner import _budget_spent_line

    line = _budget_spent_line(composed(*overrides, "run.max_hours=0.000001"))
    assert line is not None and f"{origin})." in line


def test_a_tpu_is_told_by_its_runtimes_variables_or_its_devices(tmp_path):
    assert not detect_tpu({}, tmp_path) and not detect_tpu({"TPU_NAME": ""}, tmp_path)
    for key in TPU_VARIABLES:
        assert detect_tpu({key: "v3-8"}, tmp_path), key
    (tmp_path / "accel0").touch()  # a TPU VM's chip
    assert detect_tpu({}, tmp_path)


def test_kaggles_budget_follows_its_accelerator_and_yields_to_an_override(monkeypatch):
    for key in TPU_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr("atheria.config.resolvers.DEVICES", Path("/nonexistent"))
    assert composed("platform=kaggle").run.max_hours == 12  # a GPU or the CPU
    monkeypatch.setenv("TPU_ACCELERATOR_TYPE", "v3-8")
    assert composed("platform=kaggle").run.max_hours == 9
    assert composed("platform=kaggle", "run.max_hours=11").run.max_hours == 11


def test_kaggle_trains_on_every_visible_gpu_and_the_others_on_one_unless_told():
    assert composed("platform=kaggle").trainer.devices == "auto"
    assert {composed(f"platform={p}").trainer.devices for p in ("local", "colab_free", "colab_pro")} == {1}
    assert composed("platform=kaggle", "trainer=ddp").trainer.devices == 2  # a trainer choice wins
    assert composed("platform=kaggle", "trainer.devices=1").trainer.devices == 1
