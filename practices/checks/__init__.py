"""Preflight checks (PRACTICES.md, section 2): run before training spends its budget.

Each check is a function returning a :class:`CheckResult`; the caller decides what a failure means.
Plain PyTorch: no Optuna, no Hydra.
"""

from practices.checks._result import CheckResult, class_covering_subset
from practices.checks.gradient import gradient_check
from practices.checks.init_loss import guessing_losses, init_loss_check
from practices.checks.overfit import overfit_check

__all__ = [
    "CheckResult", "class_covering_subset", "gradient_check", "guessing_losses", "init_loss_check", "overfit_check",
]
