"""The driver's config schemas: types in Python, every value (defaults included) from the config tree."""

import dataclasses

import pytest
from omegaconf import MISSING, OmegaConf

from practices.monitor import Thresholds
from sweeps._errors import ConfigError
from sweeps._packaged import conf_dir
from sweeps.config import _schema
from sweeps.config._schema import (
    config_groups,
    frozen_keys,
    monitor_config,
    preflight_config,
    run_keys,
    select_config,
    top_level_keys,
)


def _fields(schema, prefix=""):
    """Dotted field names of ``schema``, into nested schemas."""
    names = []
    for field in dataclasses.fields(schema):
        kind = _schema.__dict__.get(field.type) if isinstance(field.type, str) else field.type
        if dataclasses.is_dataclass(kind) and kind is not Thresholds:
            names += _fields(kind, f"{prefix}{field.name}.")
        else:
            names.append(prefix + field.name)
    return names


def _flat(node, prefix=""):
    out = []
    for key, value in node.items():
        if isinstance(value, dict) and key != "thresholds":
            out += _flat(value, f"{prefix}{key}.")
        else:
            out.append(prefix + key)
    return out


def test_schema_holds_no_default_values():
    """One source of truth: a default written in Python as well as in YAML could drift."""
    with_value = [f"{name}.{field.name}" for name, schema in _schema._SCHEMAS.items()
                  for field in dataclasses.fields(schema) if field.default is not MISSING]
    nested = [f"{schema.__name__}.{field.name}" for schema in (_schema.GradientCheckConfig, _schema.InitLossCheckConfig,
                                                                _schema.OverfitCheckConfig)
              for field in dataclasses.fields(schema) if field.default is not MISSING]
    assert with_value == [] and nested == []


def test_schema_keys_match_the_config_trees_defaults():
    for name, schema in _schema._SCHEMAS.items():
        node = OmegaConf.to_container(_schema._defaults(name))
        assert sorted(_flat(node)) == sorted(_fields(schema)), name


def test_schema_absent_nodes_take_the_config_trees_defaults():
    empty = OmegaConf.create({})
    monitor = OmegaConf.load(conf_dir() / "monitor" / "default.yaml")
    assert dataclasses.asdict(monitor_config(empty)) == OmegaConf.to_container(monitor)
    assert select_config(empty).top_k == OmegaConf.load(conf_dir() / "select" / "default.yaml").top_k
    preflight = OmegaConf.load(conf_dir() / "preflight" / "default.yaml")
    assert OmegaConf.to_container(preflight_config(empty)) == OmegaConf.to_container(preflight)


def test_schema_monitor_thresholds_agree_with_the_practices_library():
    """practices.monitor.Thresholds keeps its own defaults for users of the library alone."""
    monitor = OmegaConf.load(conf_dir() / "monitor" / "default.yaml")
    assert OmegaConf.to_container(monitor.thresholds) == dataclasses.asdict(Thresholds())


def test_schema_key_lists_follow_the_config_tree():
    primary = OmegaConf.load(conf_dir() / "config.yaml")
    groups = [next(iter(entry)) for entry in primary.defaults if OmegaConf.is_dict(entry)]
    assert list(config_groups()) == groups
    assert {"sweep", "select", "split", "search", "stages", "lr_range_test", "provenance"} <= set(top_level_keys())
    assert set(frozen_keys()) == set(top_level_keys()) - {"model", "optimizer", "schedule", "trainer"}
    assert "hydra" not in top_level_keys() and "defaults" not in top_level_keys()


def test_schema_run_keys_are_the_marked_fields():
    keys = run_keys()
    assert {"sweep.n_trials", "sweep.storage", "trainer.num_threads", "vault.reopen", "select.top_k"} <= set(keys)
    assert not {"sweep.seed", "sweep.metric", "trainer.max_epochs", "monitor.patience"} & set(keys)


def test_schema_monitor_settings_follow_the_node_when_asked_again():
    every_5 = OmegaConf.create({"monitor": {"every_n_steps": 5}})
    every_7 = OmegaConf.create({"monitor": {"every_n_steps": 7}})
    first = monitor_config(every_5)
    assert monitor_config(every_5) is first  # validated once per node: asked twice per trial
    assert monitor_config(every_7).every_n_steps == 7
    assert monitor_config(OmegaConf.create({"monitor": {"every_n_steps": 5}})).every_n_steps == 5
    assert monitor_config(OmegaConf.create({"monitor": {"patience": 3}})).patience == 3


@pytest.mark.parametrize("name, node, message", [
    ("sweep", {"n_trials": "abc"}, "sweep.n_trials must be an integer, got 'abc'"),
    ("trainer", {"max_epochs": 1.5}, "trainer.max_epochs must be an integer, got 1.5"),
    ("trainer", {"num_threads": "x"}, "trainer.num_threads must be an integer or null, got 'x'"),
    ("sweep", {"timeout": "soon"}, "sweep.timeout must be a number or null, got 'soon'"),
    ("monitor", {"plots": "maybe"}, "monitor.plots must be true or false, got 'maybe'"),
    ("monitor", {"thresholds": {"update_ratio_low": "x"}},
     "monitor.thresholds.update_ratio_low must be a number, got 'x'"),
])
def test_schema_wrong_type_names_the_key_what_it_takes_and_the_value(name, node, message):
    with pytest.raises(ConfigError) as caught:
        _schema._typed(name, OmegaConf.create(node))
    assert str(caught.value) == message


def test_schema_unknown_key_lists_the_keys_there_are():
    with pytest.raises(ConfigError) as caught:
        _schema._typed("select", OmegaConf.create({"top": 3}))
    assert str(caught.value) == "select.top is not a key of select; its keys: ['enabled', 'top_k', 'n_seeds']"
