"""The test vault's state as the study's note in optuna-dashboard (user text as literal code spans).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sweeps._markdown import literal
from sweeps.study._select import note_section
from sweeps.vault._state import Vault

if TYPE_CHECKING:
    pass

__all__ = ["write_note"]


def write_note(vault: Vault) -> None:
    """The vault's state as the study's note in optuna-dashboard."""
    from optuna_dashboard import save_note

    seal, result = vault.seal, vault.result
    lines = ["## Test vault", ""]
    if result:
        lines += [f"**Opened** (opening #{result['opening']}) at {result['opened_at']} by {literal(result['host'])} "
                  f"(pid {result['pid']}) for trial {result['trial']} ({result['metric']} {result['val_value']:.4f}).",
                  "", "| test metric | value |", "|---|---|"]
        ci = result.get("test_ci") or {}
        lines += [f"| {k} | {v:.4f}" + (f" (95% CI {ci[k][0]:.4f} to {ci[k][1]:.4f})" if k in ci else "") + " |"
                  for k, v in result["test"].items()]
        lines += ["", f"Final model: {result['final_model']}, {result['epochs']} epochs, seed {result['seed']}."]
    lines += ["", f"Test split: {seal['n_test']} samples, fingerprint `{seal['fingerprint'][:16]}`; "
                  f"{seal['duplicates']} shared with train/validation ({seal['dropped_duplicates']} dropped)."]
    if vault.forced:
        lines += ["", f"**FORCED** ({len(vault.forced)} times, vault.reopen=true): the vault was opened more than once "
                      "or tuning went on after an opening; the test score is no longer an honest estimate."]
    lines += ["", "### Audit", ""]
    lines += [f"- {e['at']} {e['event']}" + (" (forced)" if e.get("forced") else "")
              + f" by {literal(e['host'])} (pid {e['pid']})"
              for e in vault.audit]
    selection = note_section(vault.study)
    save_note(vault.study, "\n".join(lines) + "\n" + (f"\n{selection}" if selection else ""))
