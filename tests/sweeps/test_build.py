"""From config to trained model: the weight average that trainer.averaging asks for."""

import pytest
import torch
from omegaconf import OmegaConf

from practices.train import evaluate
from sweeps.experiment._build import judged_from_epoch, make_average, train
from sweeps.experiment._experiment import prepare

SMALL = ["data._target_=tests.helpers.blobs", "model=mlp", "model.width=8", "model.depth=1", "trainer.max_epochs=3",
         "trainer.batch_size=32", "trainer.num_threads=1", "preflight=off"]


@pytest.fixture(scope="module")
def small():
    exp, dataset = prepare(SMALL, probe=False)
    return exp.config({}), dataset.train_val()


def _without_averaging_keys(cfg):
    """The config as written before trainer.averaging existed."""
    old = OmegaConf.to_container(cfg)
    for key in ("averaging", "ema_decay", "swa_start_epoch"):
        del old["trainer"][key]
    return OmegaConf.create(old)


def test_make_average_is_none_for_none_and_for_configs_without_the_keys(small):
    cfg, _ = small
    model = torch.nn.Linear(2, 2)
    assert cfg.trainer.averaging == "none" and make_average(cfg, model) is None
    assert make_average(_without_averaging_keys(cfg), model) is None


def test_make_average_reads_the_decay_and_the_swa_start(small):
    cfg, _ = small
    model = torch.nn.Linear(2, 2)
    ema = make_average(OmegaConf.merge(cfg, {"trainer": {"averaging": "ema", "ema_decay": 0.9}}), model)
    assert (ema.averaging, ema.ema_decay) == ("ema", 0.9)
    swa = make_average(OmegaConf.merge(cfg, {"trainer": {"averaging": "swa", "max_epochs": 20}}), model)
    assert (swa.averaging, swa.swa_start_epoch) == ("swa", 16)  # null: the last quarter
    swa = make_average(OmegaConf.merge(cfg, {"trainer": {"averaging": "swa", "swa_start_epoch": 2}}), model)
    assert swa.swa_start_epoch == 2


def test_judged_from_epoch_is_swas_start_and_1_otherwise(small):
    cfg, _ = small
    assert judged_from_epoch(cfg) == 1 and judged_from_epoch(_without_averaging_keys(cfg)) == 1
    assert judged_from_epoch(OmegaConf.merge(cfg, {"trainer": {"averaging": "ema"}})) == 1  # averages from step 1
    assert judged_from_epoch(OmegaConf.merge(cfg, {"trainer": {"averaging": "swa", "max_epochs": 40}})) == 31
    assert judged_from_epoch(OmegaConf.merge(cfg, {"trainer": {"averaging": "swa", "swa_start_epoch": 2}})) == 2


def test_make_monitor_counts_an_swa_trials_patience_from_its_average(small):
    from sweeps.trial._monitor import make_monitor

    cfg, _ = small
    swa = OmegaConf.merge(cfg, {"trainer": {"averaging": "swa", "max_epochs": 40}})
    assert make_monitor(swa).stopping.patience_from_epoch == 31
    assert make_monitor(cfg).stopping.patience_from_epoch == 1


def test_train_with_averaging_none_is_identical_to_a_config_without_it(small):
    cfg, data = small
    a, built_a = train(cfg, data, seed=5)
    b, built_b = train(_without_averaging_keys(cfg), data, seed=5)
    assert a.history == b.history
    state_b = built_b.model.state_dict()
    for key, value in built_a.model.state_dict().items():
        assert torch.equal(value, state_b[key])


def test_train_with_averaging_returns_the_averaged_model(small):
    cfg, data = small
    plain, _ = train(cfg, data, seed=5)
    ema_cfg = OmegaConf.merge(cfg, {"trainer": {"averaging": "ema", "ema_decay": 0.5}})
    ema, built_ema = train(ema_cfg, data, seed=5)
    assert [s.train_loss for s in ema.history] == [s.train_loss for s in plain.history]
    assert ema.history[-1].val_loss != plain.history[-1].val_loss
    assert evaluate(built_ema.model, data.X_val, data.y_val)[0] == pytest.approx(ema.history[-1].val_loss, rel=1e-6)


@pytest.mark.parametrize("node", [
    {"_target_": "practices.models.CNN", "channels": [4, 8], "kernel_size": 3, "hidden": 8, "dropout": 0.0},
    {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1, "momentum": 0.9},
    {"_target_": "collections.OrderedDict", "inner": {"_target_": "collections.OrderedDict", "a": 1}},
    {"_target_": "collections.OrderedDict", "_recursive_": False, "a": {"b": [1, 2]}},
])
def test_instantiate_builds_what_hydra_builds(node):
    import functools

    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from sweeps.experiment._build import _instantiate

    cfg = OmegaConf.create(node)
    extra = {"in_shape": (1, 8, 8), "n_classes": 3} if "CNN" in node["_target_"] else {}
    ours, hydras = _instantiate(cfg, **extra), instantiate(cfg, **extra, _convert_="all")
    if node.get("_partial_"):  # Hydra returns its own deferred call: compare what both build
        assert isinstance(ours, functools.partial)
        weights = [torch.nn.Parameter(torch.zeros(2))]
        built, expected = ours(weights), hydras(weights)
        assert type(built) is type(expected) and built.defaults == expected.defaults
        return
    assert type(ours) is type(hydras)
    if isinstance(ours, torch.nn.Module):
        assert str(ours) == str(hydras)
    else:
        assert ours == hydras


def test_instantiate_words_an_unknown_target_as_hydra_does():
    from hydra.errors import InstantiationException
    from omegaconf import OmegaConf

    from sweeps.experiment._build import _instantiate

    with pytest.raises(InstantiationException, match="nosuch.module.Model"):
        _instantiate(OmegaConf.create({"_target_": "nosuch.module.Model"}))
