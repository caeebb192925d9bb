import optuna
import pytest
import torch
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from sweeps._errors import ConfigError
from sweeps.config._space import Probe, config_for
from sweeps.experiment._experiment import prepare

QUICK = ["+experiment=quickstart"]


def test_quickstart_space_compiles_to_the_expected_distributions(in_tmp):
    exp, _ = prepare(QUICK)
    assert exp.space.distributions() == {
        "optimizer.lr": FloatDistribution(0.005, 0.3, log=True),
        "optimizer.momentum": FloatDistribution(0.5, 0.95),
        "model.hidden": CategoricalDistribution([32, 64, 128]),
        "schedule": CategoricalDistribution(["constant", "step", "cosine"]),
        "schedule[step].step_epochs": IntDistribution(2, 6),
        "schedule[step].factor": FloatDistribution(0.2, 0.8),
        "schedule[cosine].warmup_epochs": IntDistribution(0, 2),
    }


def test_conditional_params_are_sampled_only_for_the_chosen_option(in_tmp):
    exp, _ = prepare(QUICK)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        params = exp.space.sample(trial)
        option = params["schedule"]
        seen.add(option)
        conditional = {k for k in params if k.startswith("schedule[")}
        assert all(k.startswith(f"schedule[{option}].") for k in conditional)
        cfg = exp.config(params)
        assert cfg.schedule._target_ == f"practices.schedules.{option}"
        if option == "step":
            assert cfg.schedule.factor == params["schedule[step].factor"]
        if option == "cosine":
            assert cfg.schedule.n_epochs == cfg.trainer.max_epochs == 12  # interpolation resolved on the copy
        assert cfg.optimizer.lr == params["optimizer.lr"]
        study.tell(trial, 0.0)
    assert seen == {"constant", "step", "cosine"}


def test_config_copy_leaves_the_base_config_untouched(in_tmp):
    exp, _ = prepare(QUICK)
    before = OmegaConf.to_yaml(exp.cfg)
    exp.config({"optimizer.lr": 0.2, "optimizer.momentum": 0.6, "model.hidden": 32, "schedule": "step",
                "schedule[step].step_epochs": 3, "schedule[step].factor": 0.5})
    assert OmegaConf.to_yaml(exp.cfg) == before


def test_fingerprint_changes_with_a_bound_and_not_otherwise(in_tmp):
    a, _ = prepare(QUICK)
    b, _ = prepare(QUICK)
    c, _ = prepare(QUICK + ["search.optimizer.lr.high=0.4"])
    assert a.space.fingerprint() == b.space.fingerprint()
    assert a.space.fingerprint() != c.space.fingerprint()


@pytest.mark.parametrize(
    "override,message",
    [
        ("+search.model.nope={type:float,low:0,high:1}", "no config key 'model.nope'"),
        ("search.optimizer.lr.low=0.5", "low must be <= high, got low=0.5, high=0.3"),
        ("search.optimizer.lr.low=0", "a log scale needs low > 0, got low=0"),
        ("search.model.hidden.choices=[]", "choices must be a non-empty list"),
        ("search.optimizer.lr.type=gaussian", "expected a mapping with type float, int or categorical"),
        ("+search.sweep.seed={type:int,low:0,high:3}", "sweep.* is fixed for a study"),
        ("+search.schedule.options.nosuch={}", "nosuch"),
        ("+search.schedule.options.step.bogus={type:int,low:1,high:2}", "no key 'bogus' in schedule=step"),
    ],
)
def test_bad_search_specs_name_key_and_value(override, message, in_tmp):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        prepare(QUICK + [override])


def test_probes_cover_every_choice_both_ends_and_joint_ends_once(in_tmp):
    exp, _ = prepare(QUICK)
    probes = exp.space.probes()
    labels = [p.label for p in probes]
    assert len({p.key() for p in probes}) == len(probes), "no probe twice"
    for label in ("search.model.hidden=32", "search.model.hidden=64", "search.model.hidden=128",
                  "search.optimizer.lr=0.005", "search.optimizer.lr=0.3", "search.optimizer.momentum=0.95",
                  "search.schedule=constant", "search.schedule.options.step.step_epochs=2",
                  "search.schedule.options.step.step_epochs=6", "search.schedule.options.cosine.warmup_epochs=2"):
        assert label in labels
    single = next(p for p in probes if p.label == "search.schedule.options.cosine.warmup_epochs=2")
    assert single.choices == {"schedule": "cosine"} and single.values == {"schedule.warmup_epochs": 2}
    high = next(p for p in probes if p.label.startswith("every searched key at its high end") and
                p.choices == {"schedule": "cosine"})
    assert high.values == {"optimizer.lr": 0.3, "optimizer.momentum": 0.95, "model.hidden": 128,
                           "schedule.warmup_epochs": 2}
    mixed = [p for p in probes if "(its low end) with every other" in p.label]
    assert {p.label.split("=")[0] for p in mixed} == {"search.schedule.options.step.step_epochs",
                                                      "search.schedule.options.cosine.warmup_epochs"}
    assert len(probes) == 26, "grows with the keys, not with their product"


def test_probe_config_moves_between_probes_as_config_for_builds_them(in_tmp):
    from sweeps.experiment._probes import _ProbeConfig

    # cosine's n_epochs is an interpolation (${trainer.max_epochs}): restoring it must keep it one.
    exp, _ = prepare([*QUICK, "+search.schedule.options.cosine.n_epochs={type:int,low:6,high:12}",
                      "+search.trainer.max_epochs={type:int,low:3,high:12}"])
    work = _ProbeConfig(exp)
    for probe in exp.space.probes():
        cfg = work.at(probe)
        expected = config_for(exp.cfg, exp.options, probe.choices, probe.values)
        for group in ("model", "optimizer", "schedule", "trainer"):
            assert OmegaConf.to_container(cfg[group], resolve=True) == OmegaConf.to_container(expected[group]), \
                (probe.label, group)
    cosine = work.at(Probe("cosine at its base values", {"schedule": "cosine"}, {}))
    assert OmegaConf.to_container(cosine.schedule) == OmegaConf.to_container(exp.options["schedule"]["cosine"])


def test_adams_betas_are_searchable_as_scalar_keys(in_tmp):
    exp, _ = prepare([*QUICK, "optimizer=adam", "~search.optimizer.momentum",
                      "+search.optimizer.beta1={type:float,low:0.8,high:0.95}",
                      "+search.optimizer.beta2={type:float,low:0.9,high:0.9999,log:true}"])
    assert exp.space.distributions()["optimizer.beta2"] == FloatDistribution(0.9, 0.9999, log=True)
    params = {**exp.space.probes()[0].values, "optimizer.lr": 0.01, "optimizer.beta1": 0.85, "optimizer.beta2": 0.99,
              "model.hidden": 32, "schedule": "constant"}
    cfg = exp.config(params)
    from sweeps.experiment._build import build

    built = build(cfg, (1, 8, 8), 10, seed=0)
    assert isinstance(built.optimizer, torch.optim.Adam)
    assert built.optimizer.param_groups[0]["betas"] == (0.85, 0.99)


def test_config_for_resolves_interpolations_of_the_base_the_options_and_the_values():
    from omegaconf import OmegaConf

    from sweeps.config._space import config_for

    base = OmegaConf.create({"trainer": {"max_epochs": 4}, "schedule": {"n_epochs": "${trainer.max_epochs}"},
                             "model": {"width": 8}})
    options = {"schedule": {"constant": OmegaConf.create({"k": 1}),
                            "cosine": OmegaConf.create({"n_epochs": "${trainer.max_epochs}"})}}
    kept = config_for(base, options, {}, {"trainer.max_epochs": 6})
    assert OmegaConf.to_container(kept) == {"trainer": {"max_epochs": 6}, "schedule": {"n_epochs": 6},
                                            "model": {"width": 8}}
    assert config_for(base, options, {"schedule": "cosine"}, {"trainer.max_epochs": 7}).schedule.n_epochs == 7
    replaced = config_for(base, options, {"schedule": "constant"}, {"model.width": "${trainer.max_epochs}"})
    assert replaced.model.width == 4 and not OmegaConf.is_interpolation(replaced.model, "width")
    plain = config_for(base, options, {"schedule": "constant"}, {"model.width": 16})
    assert OmegaConf.to_container(plain) == {"trainer": {"max_epochs": 4}, "schedule": {"k": 1}, "model": {"width": 16}}
