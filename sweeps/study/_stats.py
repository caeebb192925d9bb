"""Nonparametric statistics for comparing configurations over seeds, and the bootstrap interval of a
test metric (scipy.stats throughout).

With few seeds these tests have little power: the smallest two-sided p-value of the Wilcoxon
signed-rank test over ``n`` pairs is ``2 / 2**n`` (0.25 for 3 pairs), that of the Mann-Whitney U test
over two groups of ``n`` is ``2 / C(2n, n)`` (0.1 for 3 and 3). docs/select.md says how to read them.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats

__all__ = ["Comparison", "bootstrap_mean_ci", "compare", "median_or_worst"]

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The winner against one runner-up, over the seeds both have a value for.

    Attributes:
        n_pairs: seeds with a value for both.
        effect: median over those seeds of the paired difference, signed so that > 0 means the
            winner is better (for a minimized metric: runner-up minus winner).
        p_wilcoxon: two-sided Wilcoxon signed-rank p-value over the pairs (1.0 when every difference
            is zero, NaN without a pair).
        p_mannwhitney: two-sided Mann-Whitney U p-value of the two groups of values (NaN without values).
    """

    n_pairs: int
    effect: float
    p_wilcoxon: float
    p_mannwhitney: float


def median_or_worst(values: Sequence[float | None], maximize: bool) -> float:
    """The median of ``values``, a missing one (a seed whose training did not complete) counted as the
    worst possible value, so that a configuration that fails on some seeds ranks below one that does not."""
    worst = -math.inf if maximize else math.inf
    return float(np.median([worst if v is None else v for v in values]))


def compare(winner: Sequence[float | None], other: Sequence[float | None], maximize: bool) -> Comparison:
    """Compares two configurations' values, given in the same seed order (``None``: no value)."""
    pairs = [(a, b) for a, b in zip(winner, other) if a is not None and b is not None]
    sign = 1.0 if maximize else -1.0
    diffs = np.array([sign * (a - b) for a, b in pairs], dtype=float)
    effect = float(np.median(diffs)) if len(diffs) else math.nan
    if not len(diffs):
        p_wilcoxon = math.nan
    elif not np.any(diffs):
        p_wilcoxon = 1.0  # no difference at all: scipy divides by zero here
    else:
        p_wilcoxon = float(stats.wilcoxon(diffs, alternative="two-sided").pvalue)
    a = [v for v in winner if v is not None]
    b = [v for v in other if v is not None]
    if a and b:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # identical groups
            p_mannwhitney = float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    else:
        p_mannwhitney = math.nan
    return Comparison(len(pairs), effect, p_wilcoxon, p_mannwhitney)


def bootstrap_mean_ci(values: np.ndarray, confidence: float = 0.95, n_resamples: int = BOOTSTRAP_RESAMPLES,
                      seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """A seeded percentile bootstrap interval of the mean of ``values`` (one value per test sample)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2 or np.all(values == values[0]):
        return float(values.mean()), float(values.mean())  # nothing to resample: the interval is the point
    result = stats.bootstrap((values,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                             method="percentile", rng=np.random.default_rng(seed),
                             batch=max(1, 2_000_000 // len(values)))
    interval = result.confidence_interval
    return float(interval.low), float(interval.high)
