"""An explicit Colab or Kaggle platform on a machine that is not that runtime is refused in one line naming
platform.force, the flag that confirms it; auto and local never are."""
import pytest

from atheria.config import check_runtime, validate
from atheria.errors import ConfigError
from tests.config.test_compose import composed

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
