import numpy as np
import pytest
import torch

from sweeps.config._compose import CONF_DIR
from sweeps.config._space import config_for
from sweeps.experiment._build import build
from sweeps.experiment._experiment import prepare

GROUPS = ["data", "model", "optimizer", "schedule", "trainer", "sweep"]


def _options(group):
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.fixture
def digits_csv(tmp_path):
    from practices.data import load_digits

    X, y = load_digits()
    import pandas as pd

    frame = pd.DataFrame(X.reshape(len(X), -1), columns=[f"px{i}" for i in range(64)])
    frame["digit"] = y
    path = tmp_path / "digits.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in _options(g)])
def test_every_group_option_composes_and_instantiates(group, option, digits_csv, in_tmp):
    overrides = [f"{group}={option}"]
    if option == "csv":
        overrides += [f"data.path={digits_csv}", "data.label=digit"]
    if group == "model" and option == "cnn":
        overrides += ["data=digits"]
    if group == "model" and option == "cnn1d":
        overrides += ["data=mnist1d"]  # signals of shape (1, 40)
    if "data=mnist1d" in overrides:
        overrides += ["data.num_samples=500"]
    exp, dataset = prepare(overrides)
    assert exp.choices[group] == option
    cfg = config_for(exp.cfg, {}, {}, {})
    data = dataset.train_val()
    built = build(cfg, data.in_shape, data.n_classes, seed=0)
    logits = built.model(data.X_train[:4].to(built.device))
    assert logits.shape == (4, 10)
    assert isinstance(built.optimizer, torch.optim.Optimizer)
    assert built.optimizer.param_groups[0]["lr"] == pytest.approx(cfg.optimizer.lr)


@pytest.mark.parametrize("name", _options("experiment"))
def test_every_experiment_prepares(name, in_tmp):
    exp, dataset = prepare([f"+experiment={name}"])
    assert exp.study_name == name
    if exp.cfg.stages is None:
        assert exp.space.distributions(), "an experiment searches something"
    else:
        from omegaconf import OmegaConf

        from sweeps.experiment._stage_plan import parse_stages, stage_experiment

        stage = parse_stages(OmegaConf.to_container(exp.cfg.stages))[0]
        assert stage_experiment(exp, stage, f"{name}.{stage.name}", None).space.distributions()
    assert dataset.sealed.n_samples > 0


def test_csv_data_defaults_features_to_all_other_columns(digits_csv, in_tmp):
    _, dataset = prepare(["data=csv", f"data.path={digits_csv}", "data.label=digit"])
    assert dataset.in_shape == (64,)
    y_digits = __import__("practices").load_digits()[1]
    y_all = np.concatenate([dataset.y_train, dataset.y_val, y_digits[dataset.sealed.indices]])
    assert len(y_all) == 1797
    assert np.bincount(y_all).tolist() == np.bincount(y_digits).tolist()


def test_own_data_and_model_targets_are_called_with_shape_and_classes(in_tmp):
    exp, dataset = prepare(["data._target_=tests.helpers.blobs", "model=mlp", "model.width=8"])
    data = dataset.train_val()
    assert data.in_shape == (5,) and data.n_classes == 3
    built = build(config_for(exp.cfg, {}, {}, {}), data.in_shape, data.n_classes, seed=0)
    assert built.model[1].in_features == 5 and built.model[-1].out_features == 3


def test_own_experiment_on_hydra_searchpath_runs(in_tmp):
    (in_tmp / "my_conf/experiment").mkdir(parents=True)
    (in_tmp / "my_conf/data").mkdir()
    (in_tmp / "my_conf/data/blobs.yaml").write_text("_target_: tests.helpers.blobs\nn_per_class: 30\n")
    (in_tmp / "my_conf/experiment/mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /data: blobs\n"
        "search:\n  model:\n    width: {type: int, low: 4, high: 16}\n"
    )
    exp, dataset = prepare([f"hydra.searchpath=[file://{in_tmp}/my_conf]", "+experiment=mine"])
    assert exp.study_name == "mine" and exp.choices["data"] == "blobs"
    assert len(dataset.y_train) + len(dataset.y_val) + dataset.sealed.n_samples == 90
    assert set(exp.space.distributions()) == {"model.width"}


def test_compose_options_reuse_the_chosen_option_only_when_the_command_line_leaves_its_group_alone(in_tmp):
    """The chosen option's node is the composed one (no second composition), equal to what composing
    it gives, and a copy; with the group overridden on the command line, the option is composed
    without that override, as every other option is."""
    from omegaconf import OmegaConf

    from sweeps.config._compose import _compose, compose_experiment, compose_options

    composed = compose_experiment(["+experiment=quickstart"])
    assert composed.choices["schedule"] == "constant"
    nodes = compose_options(composed, "schedule", ["constant", "cosine"])
    for option, node in nodes.items():
        fresh, _, _ = _compose(["+experiment=quickstart", f"schedule={option}"])
        assert OmegaConf.to_container(node) == OmegaConf.to_container(fresh.schedule)
    assert nodes["constant"] is not composed.cfg.schedule
    overridden = compose_experiment(["+experiment=quickstart", "schedule=step", "schedule.factor=0.25"])
    step = compose_options(overridden, "schedule", ["step"])["step"]
    assert overridden.cfg.schedule.factor == 0.25 and step.factor != 0.25


def test_compose_missing_option_names_the_alternatives_on_one_line(in_tmp):
    from sweeps._errors import ConfigError
    from sweeps.config._compose import compose_experiment

    with pytest.raises(ConfigError) as caught:
        compose_experiment(["select=maybe"])
    assert str(caught.value) == ("cannot compose the config from ['select=maybe']: In 'config': Could not find "
                                 "'select/maybe'; available options in 'select': default, off")
