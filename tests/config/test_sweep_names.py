"""Job names of a sweep: readable and stable for the common case, distinct for every distinct set of swept values."""
from atheria.sweeps import job_name, spelled_keys, swept_keys
from tests.helpers import compose

BASE = "MLP_16ch_D4"


def names(key, *values, base=BASE, spelled=("name",)):
    """The names of the jobs of a sweep over `key`'s values."""
    return [job_name(base, [f"{key}={v}"], {key}, spelled) for v in values]


def test_a_width_by_d_state_sweep_keeps_the_default_names(tmp_path):
    cfg = compose(tmp_path, "model.d_state=8", "model.hidden_channels=64")
    swept = {"model.d_state", "model.hidden_channels"}
    assert job_name(cfg.name, ["model.d_state=8", "model.hidden_channels=64", "qca.steps=3"], swept,
                    spelled_keys(cfg)) == "UNET_64ch_D8"
    assert names("optim.lr", "0.001", spelled=spelled_keys(cfg)) == [f"{BASE}__optim.lr=0.001"]


def test_values_made_safe_for_a_folder_keep_their_jobs_apart():
    slash, underscore, dots = names("data.path", "a/b", "a_b", "../x")
    assert underscore == f"{BASE}__data.path=a_b"
    assert slash.startswith(f"{BASE}__data.path=a_b__") and slash != underscore
    assert ".." not in dots and "/" not in dots
    assert slash == names("data.path", "a/b")[0]  # stable: the same job gets the same name next session


def test_every_swept_key_counts_even_run_length_and_presets():
    assert names("preset", "quick", "long") == [f"{BASE}__preset=quick", f"{BASE}__preset=long"]
    assert names("run.total_episodes", 2, 3) == [f"{BASE}__run.total_episodes=2", f"{BASE}__run.total_episodes=3"]
    assert len(set(names("trainer", "default", "ddp"))) == 2


def test_only_what_the_name_spells_is_left_out(tmp_path):
    default = spelled_keys(compose(tmp_path))  # ${model.tag}: UNET_${model.hidden_channels}ch_D${model.d_state}
    assert default == {"name", "model.tag", "model.hidden_channels", "model.d_state"}
    assert names("model", "unet", "mlp", base="B", spelled=default) == ["B", "B"]  # each model's tag differs
    assert names("model.arch", "unet", "mlp", base="B", spelled=default) == ["B__model.arch=unet", "B__model.arch=mlp"]
    named = spelled_keys(compose(tmp_path, "experiment=curriculum_phase1"))  # a name of its own spells nothing else
    assert names("model.d_state", 4, 8, base="curriculum_phase1", spelled=named) == [
        "curriculum_phase1__model.d_state=4", "curriculum_phase1__model.d_state=8"]


def test_without_a_swept_list_every_override_but_plumbing_counts():
    assert job_name(BASE, ["optim.lr=0.1", "preset=long", "run.max_hours=2"]) == f"{BASE}__optim.lr=0.1"


def test_swept_keys_are_the_sweep_overrides_and_the_sweepers_space():
    overrides = ["a=1,2", "b=3", "+c=range(1,3)", "d='x,y'", "e=[1,2]"]
    assert swept_keys(overrides, {"optim.lr": "interval(0,1)"}) == {"a", "c", "optim.lr"}
