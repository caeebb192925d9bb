"""The result every check returns, and the choice of the few samples a check looks at."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch

__all__ = ["CheckResult", "class_covering_subset"]


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Attributes:
        name: the check (``gradient``, ``init_loss``, ``overfit``).
        passed: whether the measured value is within the threshold.
        value: the measured number (worst relative error, mean initial loss, final training loss).
        threshold: the number it was held against.
        where: the parameter or layer concerned, when the check can name one.
        advice: what to look at when the check fails (a short confirmation when it passes).
        details: further numbers (expected loss, steps used, entries checked ...), plain JSON.
    """

    name: str
    passed: bool
    value: float
    threshold: float
    where: str | None
    advice: str
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def summary(self) -> str:
        """One line: the check, its outcome, the number and where."""
        outcome = "passed" if self.passed else "FAILED"
        where = f" at {self.where}" if self.where else ""
        return f"{self.name} check {outcome}: {self.value:.3g}{where} (threshold {self.threshold:.3g})"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (for caches and storages)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> "CheckResult":
        return cls(**{f.name: record[f.name] for f in dataclasses.fields(cls) if f.name in record})


def class_covering_subset(y: torch.Tensor, n_samples: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``n_samples`` samples covering as many classes as possible.

    Classes are visited in a seeded random order, one sample each, round after round, so ``n``
    samples over ``C`` classes hold ``min(n, C)`` classes and a balanced share of each.
    """
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y), generator=generator)
    by_class = [order[y[order] == c] for c in torch.unique(y).tolist()]
    by_class = [by_class[i] for i in torch.randperm(len(by_class), generator=generator).tolist()]
    picked: list[int] = []
    for round_ in range(max(len(members) for members in by_class)):
        for members in by_class:
            if round_ < len(members) and len(picked) < n_samples:
                picked.append(int(members[round_]))
        if len(picked) >= n_samples:
            break
    return torch.tensor(picked, dtype=torch.long)
