"""Exports a study: the best configuration as a rerunnable Hydra experiment file, and a table
of all trials."""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import yaml
from omegaconf import OmegaConf

from sweeps.experiment._experiment import Experiment
from sweeps.storage._url import mask
from sweeps.study import _select
from sweeps.study._result import result_value
from sweeps.study._study import recorded_experiment
from sweeps.study._table import trials_table
from sweeps.vault._state import vault_summary

__all__ = ["Exported", "export_study", "plain"]


@dataclasses.dataclass
class Exported:
    folder: Path
    trials_csv: Path
    best_yaml: Path | None
    test_result: Path | None = None
    selection_csv: Path | None = None


def plain(value: Any) -> Any:
    """``value`` with numpy scalars and containers turned into plain Python values."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _best_config(study: optuna.Study, exp: Experiment, storage: str) -> dict[str, Any]:
    best = _select.winner_trial(study)  # the seed-robust winner where a selection was made
    cfg = OmegaConf.to_container(exp.config(best.params), resolve=True)
    cfg["sweep"]["storage"] = mask(str(cfg["sweep"]["storage"]))  # studies made before the record was masked
    cfg["search"] = {}
    cfg["provenance"] = {
        "study": study.study_name,
        "storage": mask(storage),
        "trial": best.number,
        "metric": cfg["sweep"]["metric"],
        "value": best.value,
        "best_epoch": result_value(best, "best_epoch"),
        "seed": best.user_attrs.get("seed"),
        "params": best.params,
        "git_commit": study.user_attrs.get("git_commit"),
        "selection": _select.provenance(_select.current(study)),
        "vault": _vault_provenance(study),
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    defaults = [{f"override /{group}": option} for group, option in sorted(exp.chosen(best.params).items())
                if group != "experiment"]
    return plain({"defaults": [*defaults, "_self_"], **cfg})


def _vault_provenance(study: optuna.Study) -> dict[str, Any] | None:
    """The vault's state and latest test result, flagged when an opening or tuning was forced."""
    vault = vault_summary(study)
    if vault is None:
        return None
    keep = ("state", "fingerprint", "n_test", "duplicates", "forced")
    return {**{k: vault[k] for k in keep}, "result": vault["result"], "forced_actions": len(vault["forced_actions"])}


def _vault_header(vault: dict[str, Any] | None) -> str:
    if not vault or not vault["result"]:
        return ""
    result = vault["result"]
    metrics = ", ".join(f"{k} {v:.6g}" for k, v in result["test"].items())
    forced = " FORCED (vault.reopen=true): not an honest estimate." if vault["forced"] else ""
    return f"# Test vault opened for trial {result['trial']}: {metrics}.{forced}\n"


def _selection_header(selection: dict[str, Any] | None, metric: str) -> str:
    if not selection:
        return ""
    median = "n/a" if selection["median"] is None else f"{selection['median']:.6g}"
    return (f"# Seed-robust winner of the top {selection['top_k']}: median {metric} {median} over "
            f"seeds {selection['seeds']} (selection.csv; the best single run was trial "
            f"{selection['best_single_run_trial']}).\n")


def _write_test_result(study: optuna.Study, storage: str, folder: Path) -> Path | None:
    """``test_result.json``: the vault's seal, latest result and audit list, once it was opened."""
    vault = vault_summary(study)
    if vault is None or vault["result"] is None:
        return None
    path = folder / "test_result.json"
    path.write_text(json.dumps(plain({"study": study.study_name, "storage": mask(storage), **vault}), indent=2) + "\n")
    return path


def export_study(study: optuna.Study, storage: str, export_dir: str | Path) -> Exported:
    """Writes ``<export_dir>/<study>/trials.csv``, once a trial completed ``best.yaml``, once the
    test vault was opened ``test_result.json``, and after a seed-robust selection ``selection.csv``."""
    folder = Path(export_dir) / study.study_name
    folder.mkdir(parents=True, exist_ok=True)
    trials_csv = folder / "trials.csv"
    trials_table(study).to_csv(trials_csv, index=False)
    test_result = _write_test_result(study, storage, folder)
    selection_csv = _select.write_csv(study, folder)
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        return Exported(folder, trials_csv, None, test_result, selection_csv)
    exp = Experiment.from_record(recorded_experiment(study))
    config = _best_config(study, exp, storage)
    prov = config["provenance"]
    best_yaml = folder / "best.yaml"
    header = (
        "# @package _global_\n"
        f"# Best configuration of study {study.study_name!r}: trial {prov['trial']}, "
        f"{prov['metric']} {prov['value']:.6g} at epoch {prov['best_epoch']}, seed {prov['seed']}.\n"
        f"# Train it once: python -m sweeps.train {best_yaml}\n"
        + _selection_header(prov["selection"], prov["metric"])
        + _vault_header(prov["vault"])
    )
    best_yaml.write_text(header + yaml.safe_dump(config, sort_keys=False))
    return Exported(folder, trials_csv, best_yaml, test_result, selection_csv)
