"""The Hydra application behind ``python -m sweeps``: Hydra's own command line (``@hydra.main``), with
every run validated before Hydra writes anything.

``@hydra.main`` creates a run's output folder before it calls the application, so validation cannot
wait for it: :func:`run_app` parses Hydra's flags first, composes and validates every run the command
asks for (one, or one per combination with ``--multirun``), and only then hands the command line to
``@hydra.main``. Hydra then does what it documents: the output folder with ``.hydra/`` and a log file
(:mod:`sweeps.driver._joblog` masks passwords there), one job per combination with its basic sweeper, one
after the other. Each job runs one sweep, composed once (trials never compose).

Other Hydra commands (``--cfg``, ``--info``, ``--shell-completion``, ``--hydra-help``) run as Hydra
runs them, with any URL password in what they print masked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import logging
import re
import sys
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import hydra
from hydra._internal.utils import get_args_parser  # Hydra's own flags, parsed exactly as @hydra.main parses them
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from sweeps._cli import guarded, one_line
from sweeps._errors import ConfigError, StorageError
from sweeps._exit import EXIT_CONFIG, EXIT_OK, EXIT_STORAGE
from sweeps._packaged import conf_dir, experiments
from sweeps.config._compose import Composed, compose_experiment, compose_hydra, own_hydra
from sweeps.driver._joblog import JobOutput, masked_log_records, masked_stderr
from sweeps.experiment._experiment import Experiment, prepare
from sweeps.storage._url import mask_text

if TYPE_CHECKING:
    from sweeps.experiment._data import PreparedData

__all__ = ["run_app"]

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
_CFG_CHOICES = ("job", "hydra", "all")
# Flags that change which primary config Hydra composes: worker processes recompose from the overrides
# alone, so they could not follow. hydra.searchpath=[file://DIR] does what --config-dir does.
_UNSUPPORTED = {"config_path": "--config-path", "config_name": "--config-name", "config_dir": "--config-dir",
                "experimental_rerun": "--experimental-rerun"}


@dataclasses.dataclass
class _Run:
    """One validated run: its overrides, and for a single run the prepared experiment and data."""

    overrides: list[str]
    label: str
    prepared: tuple[Experiment, PreparedData] | None = None


@dataclasses.dataclass
class _Plan:
    runs: list[_Run]
    multirun: bool
    started: int = 0


_plan: _Plan | None = None  # what the task function runs; set by run_app for the duration of one command


def run_app(argv: Sequence[str]) -> int:
    """Runs ``python -m sweeps`` with ``argv`` (``--help`` and ``--version`` are handled before this).

    Returns:
        The exit code: that of the run, or for a multirun that of the first run that did not exit 0.
    """
    try:
        args = _parse(_bare_cfg_means_job(list(argv)))
        if args.cfg or args.info or args.shell_completion or args.hydra_help:
            return _show(args, _hydra_argv(args))
        plan = _validate(args)
    except ConfigError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_CONFIG
    except StorageError as exc:  # the storage probe of a run's validation
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_STORAGE
    return _launch(_hydra_argv(args), plan)


def _bare_cfg_means_job(argv: list[str]) -> list[str]:
    """``--cfg`` without a value (this command's flag before it was Hydra's) means ``--cfg job``."""
    out = []
    for i, arg in enumerate(argv):
        out.append(arg)
        following = argv[i + 1] if i + 1 < len(argv) else None
        if arg in ("--cfg", "-c") and (following is None or following.startswith("-") or "=" in following):
            out.append("job")
    return out


def _parse(argv: list[str]) -> Any:
    parser = get_args_parser()

    def error(message: str) -> None:
        raise ConfigError(f"{message} (python -m sweeps --help lists the flags)")

    parser.error = error  # type: ignore[method-assign]  # one line and exit 2, not argparse's usage block
    args = parser.parse_intermixed_args(argv)  # flags anywhere: +experiment=x -m sweep.seed=0,1
    for attribute, flag in _UNSUPPORTED.items():
        if getattr(args, attribute) is not None:
            raise ConfigError(f"{flag} is not supported by python -m sweeps (workers recompose the config from the "
                              "overrides alone); add your config folder with hydra.searchpath=[file://DIR] instead")
    commands = [args.run, args.multirun, args.cfg is not None, args.shell_completion, args.info is not None]
    if sum(map(bool, commands)) > 1:
        raise ConfigError("only one of --run, --multirun, --cfg, --info and --shell-completion can be given")
    if args.resolve and not args.cfg:
        raise ConfigError("--resolve only goes with --cfg")
    if args.package and not args.cfg:
        raise ConfigError("--package only goes with --cfg")
    return args


def _hydra_argv(args: Any) -> list[str]:
    """The command line for ``@hydra.main``, flags first: Hydra's own parsing takes no flag between overrides."""
    flags = [("-m", args.multirun), ("-r", args.run), ("--hydra-help", args.hydra_help), ("--resolve", args.resolve),
             ("-sc", args.shell_completion)]
    argv = [flag for flag, given in flags if given]
    for flag, value in (("--cfg", args.cfg), ("--package", args.package), ("--info", args.info)):
        argv += [flag, value] if value is not None else []
    return [*argv, *args.overrides]


def _show(args: Any, argv: list[str]) -> int:
    """``--cfg``, ``--info``, ``--shell-completion``, ``--hydra-help``: Hydra's output, passwords masked.

    ``--cfg`` and ``--info`` validate first, as a run would: a config that prints is one that runs."""
    if args.cfg or args.info:
        prepare(list(args.overrides), probe=False)  # printing a config needs no server
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), masked_log_records():
        code = _call_hydra(argv, _never)
    print(mask_text(printed.getvalue()), end="")
    return code


def _never(cfg: DictConfig) -> None:
    raise AssertionError("Hydra runs no job for --cfg, --info, --shell-completion or --hydra-help")


def _validate(args: Any) -> _Plan:
    """Every run of the command composed, validated and its data loaded; nothing written.

    Raises:
        ConfigError: naming the run, for a multirun, and what is wrong with it.
    """
    overrides = list(args.overrides)
    hydra_overrides, task_overrides, swept = _split(overrides)
    # One run (unless the config sets hydra.mode): composed once, Hydra's node with the experiment.
    composed = compose_experiment(overrides) if not args.multirun and not any(swept) else None
    base = composed.hydra if composed else compose_hydra(
        [*hydra_overrides, *(o for o, is_sweep in zip(task_overrides, swept) if not is_sweep)])
    multirun = bool(args.multirun) or base.get("mode") == RunMode.MULTIRUN
    if not multirun:
        return _Plan([_Run(overrides, " ".join(overrides), _prepare(overrides, composed))], multirun=False)
    _require_basic(base)
    params = [f"{key}={value}" for key, value in (base.sweeper.get("params") or {}).items()]
    combinations, swept_keys = _combinations([*params, *task_overrides])
    runs, studies = [], {}
    for number, combination in enumerate(combinations):
        run = _Run([*hydra_overrides, *combination], " ".join(combination))
        try:
            composed = compose_experiment(run.overrides)
            if composed.cfg.sweep.study_name is None and len(combinations) > 1:
                run.overrides += _own_study_name(composed.experiment or "sweeps", combination, swept_keys)
            exp, data = _prepare(run.overrides)
        except ConfigError as exc:
            raise ConfigError(f"run #{number} of {len(combinations)} ({run.label}): {exc}") from None
        study = (exp.cfg.sweep.storage, exp.study_name)
        if study in studies:
            raise ConfigError(f"runs #{studies[study]} and #{number} of the multirun would both run study "
                              f"{study[1]!r} in {study[0]}; leave sweep.study_name null (each run then gets "
                              "<experiment>-<swept values>) or sweep a list of names")
        studies[study] = number
        run.prepared = (exp, data) if len(combinations) == 1 else None  # data for one run at a time in memory
        runs.append(run)
    return _Plan(runs, multirun=True)


def _own_study_name(experiment: str, combination: list[str], swept_keys: set[str]) -> list[str]:
    """A study of its own for each combination of a multirun whose study_name is left null: the
    experiment's name and the swept values, in the characters a study name may hold
    (``quickstart-sweep.seed_1``). A swept storage's password is masked first: the name is stored,
    printed and names the export folder."""
    swept = [mask_text(o).lstrip("+~").replace("\\", "").replace("=", "_", 1) for o in combination
             if o.split("=", 1)[0] in swept_keys and o.split("=", 1)[0].lstrip("+~") != "experiment"]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", "-".join([experiment, *swept]))[:100]
    return [f"sweep.study_name={name}"] if swept else []


def _split(overrides: list[str]) -> tuple[list[str], list[str], list[bool]]:
    """The ``hydra.*`` overrides, the others, and which of the others are sweeps (``a=1,2``)."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as exc:
        raise ConfigError(str(exc)) from None
    hydra_overrides = [o.input_line for o in parsed if o.is_hydra_override()]
    task = [o for o in parsed if not o.is_hydra_override()]
    return hydra_overrides, [o.input_line for o in task], [o.is_sweep_override() for o in task]


def _require_basic(hydra_node: DictConfig) -> None:
    sweeper = OmegaConf.select(hydra_node, "sweeper._target_")
    launcher = OmegaConf.select(hydra_node, "launcher._target_")
    if sweeper != BASIC_SWEEPER:
        raise ConfigError(f"hydra/sweeper: --multirun runs one sweep per combination with Hydra's basic sweeper "
                          f"(Optuna searches inside each sweep), got {sweeper}")
    if launcher != BASIC_LAUNCHER:
        raise ConfigError(f"hydra/launcher: --multirun runs its sweeps one after the other with Hydra's basic "
                          f"launcher (each sweep runs its own workers: sweep.n_workers), got {launcher}")


def _combinations(task_overrides: list[str]) -> tuple[list[list[str]], set[str]]:
    """The overrides of each job, in the order Hydra's basic sweeper runs them: one list per key
    (a sweep gives its values, a plain override its one value), the last override of a key winning,
    and their product; and the keys swept over more than one value."""
    with own_hydra():
        parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
        try:
            parsed = parser.parse_overrides(task_overrides)
        except HydraException as exc:
            raise ConfigError(str(exc)) from None
        per_key: dict[str, list[str]] = {}
        for override in parsed:
            key = override.get_key_element()
            if not override.is_sweep_override():
                per_key[key] = [f"{key}={override.get_value_element_as_str()}"]
            elif override.is_discrete_sweep():
                per_key[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
            else:
                raise ConfigError(f"{override.input_line}: Hydra's basic sweeper sweeps lists and ranges, not "
                                  "intervals (Optuna searches intervals: put them under search:)")
    swept = {key for key, values in per_key.items() if len(values) > 1}
    return [list(values) for values in itertools.product(*per_key.values())], swept


def _prepare(overrides: list[str], composed: Composed | None = None) -> tuple[Experiment, PreparedData]:
    """The experiment of ``overrides``, ready to run; refuses a valid config that searches nothing."""
    exp, data = prepare(overrides, composed=composed)
    if not exp.cfg.get("search") and exp.cfg.get("stages") is None:
        names = ", ".join(experiments())
        raise ConfigError(f"nothing to search: name an experiment, python -m sweeps +experiment=NAME with NAME one of "
                          f"{names} (or yours on hydra.searchpath), or give a search: node")
    return exp, data


def _launch(argv: list[str], plan: _Plan) -> int:
    global _plan
    _plan = plan
    try:
        with masked_log_records():
            code = _call_hydra(argv, _task)
    finally:
        _plan = None
    if plan.multirun and code != EXIT_OK and plan.started:
        rest = len(plan.runs) - plan.started
        print(f"multirun stopped: run #{plan.started - 1} of {len(plan.runs)} exited with code {code}"
              + (f"; {rest} run(s) did not start (rerun the same command: finished studies resume as no-ops)"
                 if rest else ""), file=sys.stderr)
    return code


def _call_hydra(argv: list[str], task: Any) -> int:
    """Hydra's ``@hydra.main`` application on the packaged config tree, called with ``argv``."""
    app = hydra.main(config_path=str(conf_dir()), config_name="config", version_base="1.3")(task)
    with _sys_argv(argv), _root_logging_restored(), masked_stderr():
        try:
            app()
        except SystemExit as exc:  # Hydra's own errors exit 1; a run that did not exit 0 raises its code
            return exc.code if isinstance(exc.code, int) else EXIT_CONFIG
    return EXIT_OK


@contextlib.contextmanager
def _sys_argv(argv: list[str]) -> Iterator[None]:
    saved = sys.argv
    sys.argv = [saved[0] if saved else "sweeps", *argv]
    try:
        yield
    finally:
        sys.argv = saved


@contextlib.contextmanager
def _root_logging_restored() -> Iterator[None]:
    """Hydra configures the root logger (console, and the run's log file); put it back afterwards, so
    that a caller of main() in the same process keeps its own logging and no file stays open."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)


def _task(cfg: DictConfig) -> None:
    """One Hydra job: one sweep. A code other than 0 ends the command (and a multirun) with that code."""
    assert _plan is not None, "the task runs inside run_app"
    hydra_cfg = HydraConfig.get()
    number = hydra_cfg.job.num if _plan.multirun else 0
    run = _plan.runs[number]
    _plan.started = number + 1
    with JobOutput(hydra_cfg) as output:
        code = _run_sweep(run)
    if code == EXIT_CONFIG:
        output.remove()  # refused (a changed study, the vault): as for any bad input, nothing stays written
    if code != EXIT_OK:
        raise SystemExit(code)


def _run_sweep(run: _Run) -> int:
    """Runs one sweep; refusals found only once the storage is open (a study whose fixed config
    changed, a vault already opened) are bad input too: one line, exit 2 (sweeps._cli.guarded)."""

    def body() -> int:
        # Imported here, not at the top: a command refused for its config never pays for torch (~2 s).
        from sweeps.driver import _driver, _staged

        exp, data = run.prepared or prepare(run.overrides)
        run.prepared = None
        if exp.cfg.get("stages") is not None:
            return _staged.run_stages(exp, data)
        return _driver.run(exp, data)

    return guarded(body)
