"""A trial's training report in optuna-dashboard: a markdown note, plots and checkpoints as artifacts.

Written at the end of every trial that ran with the monitor, completed, pruned or failed. Curves go
to artifacts (Optuna's file-system artifact store, beside the storage by default); the trial's user
attributes get only a handful of labels and ids.
"""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path
from typing import Any, Mapping

import optuna
import torch
from omegaconf import DictConfig
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna_dashboard import get_note, save_note

from practices.monitor import Diagnosis, Monitor
from sweeps._config import monitor_config
from sweeps._markdown import literal
from sweeps._storage import artifact_dir, mask

__all__ = ["artifact_store", "preflight_rows", "render_note", "report_trial"]

log = logging.getLogger("sweeps")
_MAX_ATTR_CHARS = 300
_PLOT_DPI = 80
CHECKPOINT_MIMETYPE = "application/octet-stream"


def artifact_store(cfg: DictConfig) -> FileSystemArtifactStore:
    """The study's file-system artifact store (``sweep.artifact_dir``, else beside the storage)."""
    folder = artifact_dir(cfg.sweep.storage, cfg.sweep.get("artifact_dir"))
    folder.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(folder)


def report_trial(trial: optuna.Trial, monitor: Monitor, cfg: DictConfig, error: BaseException | None) -> None:
    """Writes the trial's note, plots and checkpoints. Never raises: a report that cannot be
    written must not turn a pruned or completed trial into a failed one."""
    try:
        _report(trial, monitor, cfg, error)
    except Exception as exc:  # disk full, a plot that cannot be drawn: log it, keep the trial's state
        storage = str(cfg.sweep.storage)
        reason = f"{type(exc).__name__}: {exc}".replace(storage, mask(storage))[:_MAX_ATTR_CHARS]
        log.warning("trial %d: the training report could not be written: %s", trial.number, reason)
        try:
            trial.set_user_attr("report_error", reason)
        except Exception:  # the storage itself is gone; nothing more to record
            pass


def _report(trial: optuna.Trial, monitor: Monitor, cfg: DictConfig, error: BaseException | None) -> None:
    settings = monitor_config(cfg)
    diagnoses = monitor.diagnose()
    trial.set_user_attr("diagnoses", ",".join(d.code for d in diagnoses) or "none")
    if monitor.stopped_epoch is not None:
        trial.set_user_attr("stopped_early_epoch", monitor.stopped_epoch)
    store = artifact_store(cfg)
    artifacts: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="sweeps-report-") as tmp:
        folder = Path(tmp)
        for kind, state in (("best", monitor.best_state), ("last", monitor.last_state)):
            if state is None:
                continue
            path = folder / f"{kind}_checkpoint.pt"
            torch.save(state, path)
            # Python's mimetypes guesses .pt as a SNES page table; a checkpoint is opaque bytes.
            artifact_id = upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial,
                                          mimetype=CHECKPOINT_MIMETYPE)
            trial.set_user_attr(f"artifact.{kind}_checkpoint", artifact_id)
            artifacts.append((path.name, artifact_id))
        if settings.plots:
            for path in _plots(monitor, folder, settings.thresholds):
                artifact_id = upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial)
                artifacts.append((path.name, artifact_id))
    # The dashboard serves a trial's artifacts at /artifacts/<study id>/<trial id>/<artifact id>;
    # Optuna's own upload_artifact keys them by the same storage ids.
    url = f"/artifacts/{trial.study._study_id}/{trial._trial_id}/"
    # The preflight wrote its own note before training (checks, cache origin, the parameter concerned):
    # the report keeps it as its preflight section.
    previous = get_note(trial) or ""
    preflight_note = previous if previous.startswith(_PREFLIGHT_HEADING) else None
    note = render_note(trial.number, monitor, diagnoses, _outcome(trial, monitor, error), trial.user_attrs,
                       [(name, url + artifact_id) for name, artifact_id in artifacts], preflight_note)
    save_note(trial, note)
    if settings.print_diagnoses:
        for d in diagnoses:
            print(f"  trial {trial.number}: {d.code}: {d.summary}", flush=True)


_PREFLIGHT_HEADING = "## Preflight"


def _outcome(trial: optuna.Trial, monitor: Monitor, error: BaseException | None) -> str:
    attrs = trial.user_attrs
    if error is None:
        stopped = f", stopped early at epoch {monitor.stopped_epoch}" if monitor.stopped_epoch else ""
        return f"**complete** after {len(monitor.epochs)} epochs{stopped}"
    if isinstance(error, optuna.TrialPruned):
        return f"**pruned**: {literal(attrs.get('prune_reason', error))}"
    return f"**failed**: {literal(attrs.get('fail_reason', f'{type(error).__name__}: {error}'))}"


def preflight_rows(user_attrs: Mapping[str, Any]) -> list[tuple[str, Any, Any, Any]]:
    """``(check, passed, value, threshold)`` for each ``preflight.<check>.*`` user attribute."""
    checks: dict[str, dict[str, Any]] = {}
    for key, value in user_attrs.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "preflight" and parts[2] in ("passed", "value", "threshold"):
            checks.setdefault(parts[1], {})[parts[2]] = value
    return [(name, c.get("passed"), c.get("value"), c.get("threshold")) for name, c in sorted(checks.items())]


def _number(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3g}"
    return "" if value is None else str(value)


def render_note(
    number: int,
    monitor: Monitor,
    diagnoses: list[Diagnosis],
    outcome: str,
    user_attrs: Mapping[str, Any],
    artifacts: list[tuple[str, str]],
    preflight_note: str | None = None,
) -> str:
    """The trial's note (markdown): outcome, preflight, diagnoses with numbers and advice, best
    epoch, per-layer medians and links to the artifacts."""
    lines = [f"## Training report, trial {number}", "", outcome, ""]
    if monitor.best_epoch is not None:
        lines += [f"Best epoch: **{monitor.best_epoch}** ({monitor.metric} = {monitor.best_value:.4f}); "
                  f"initial training loss {_number(monitor.initial_loss)}.", ""]
    rows = preflight_rows(user_attrs)
    if preflight_note:
        lines += ["#" + preflight_note.strip(), ""]
    elif rows:
        lines += ["### Preflight", "", "| check | result | value | threshold |", "|---|---|---|---|"]
        lines += [f"| {name} | {'passed' if passed else 'FAILED' if passed is not None else ''} | {_number(value)} "
                  f"| {_number(threshold)} |" for name, passed, value, threshold in rows]
        lines.append("")
    lines += ["### Diagnoses", ""]
    if not diagnoses:
        lines.append("No problems found.")
    for d in diagnoses:
        at = f", epoch {d.epoch}" if d.epoch is not None else ""
        # Summaries and advice name the user's layers: literal text, never Markdown.
        lines.append(f"- **{d.code}** ({d.severity}{at}): {literal(d.summary)}. *Advice:* {literal(d.advice)}")
    lines.append("")
    stats = monitor.layer_stats()
    if stats:
        lines += ["### Layers (medians over sampled steps)", "",
                  "| layer | gradient norm | update ratio | dead units | saturated |", "|---|---|---|---|---|"]
        lines += [f"| {literal(s.layer, in_table=True)} | {_number(s.grad_norm)} | {_number(s.update_ratio)} | {_number(s.dead_fraction)} "
                  f"| {_number(s.saturated_fraction)} |" for s in stats]
        lines.append("")
    if artifacts:
        lines += ["### Artifacts", ""]
        # Names and URLs are ours (fixed file names, storage ids), never the user's.
        lines += [f"- [{name}]({url})" for name, url in artifacts if not name.endswith(".png")]
        for name, url in artifacts:
            if name.endswith(".png"):
                lines += ["", f"![{name}]({url})"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ plots


def _plots(monitor: Monitor, folder: Path, thresholds: Any) -> list[Path]:
    # Imported on first use (~0.3 s): only runs with plots pay it. Figure, not pyplot: no global state.
    from matplotlib.figure import Figure

    paths = []
    if monitor.epochs:
        paths.append(_loss_curve(Figure, monitor, folder / "loss_curve.png"))
    if any(monitor.update_ratios.values()):
        paths.append(_update_ratios(Figure, monitor, thresholds, folder / "update_ratio.png"))
    if monitor.first_layer_filters is not None:
        paths.append(_filters(Figure, monitor.first_layer_filters, folder / "first_layer_filters.png"))
    return paths


def _loss_curve(Figure: Any, monitor: Monitor, path: Path) -> Path:
    from matplotlib.ticker import MaxNLocator, NullLocator

    epochs = [s.epoch for s in monitor.epochs]
    fig = Figure(figsize=(11, 3.2), dpi=_PLOT_DPI)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.16, top=0.9, wspace=0.25)  # fixed: a layout engine costs ~0.1 s
    loss_ax, metric_ax, lr_ax = fig.subplots(1, 3)
    for ax in (loss_ax, metric_ax, lr_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss_ax.plot(epochs, [s.train_loss for s in monitor.epochs], marker=".", label="train")
    loss_ax.plot(epochs, [s.val_loss for s in monitor.epochs], marker=".", label="validation")
    if monitor.best_epoch is not None:
        for ax in (loss_ax, metric_ax):
            ax.axvline(monitor.best_epoch, color="grey", linestyle=":", label="best epoch")
    loss_ax.set(title="loss", xlabel="epoch")
    loss_ax.legend(loc="upper right")  # a fixed place: "best" searches and costs
    metric_ax.plot(epochs, [s.metric(monitor.metric) for s in monitor.epochs], marker=".", color="tab:green")
    metric_ax.set(title=monitor.metric, xlabel="epoch")
    lr_ax.plot(epochs, [s.lr for s in monitor.epochs], marker=".", color="tab:purple")
    lr_ax.set(title="learning rate", xlabel="epoch")
    if all(s.lr > 0 for s in monitor.epochs):
        lr_ax.set_yscale("log")
        lr_ax.yaxis.set_minor_locator(NullLocator())
    fig.savefig(path)
    return path


def _update_ratios(Figure: Any, monitor: Monitor, thresholds: Any, path: Path) -> Path:
    from matplotlib.ticker import NullLocator

    fig = Figure(figsize=(7, 3.6), dpi=_PLOT_DPI)
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.14, top=0.9)
    ax = fig.subplots()
    steps = monitor.sampled_steps
    for label, ratios in monitor.update_ratios.items():
        finite = [(s, r) for s, r in zip(steps, ratios) if r > 0 and math.isfinite(r)]
        if finite:
            ax.plot(*zip(*finite), label=label, linewidth=1)
    ax.axhspan(thresholds.update_ratio_low, thresholds.update_ratio_high, color="tab:green", alpha=0.12,
               label=f"[{thresholds.update_ratio_low:.0e}, {thresholds.update_ratio_high:.0e}]")
    ax.axhline(1e-3, color="tab:green", linestyle=":", linewidth=1)
    ax.set_yscale("log")
    ax.yaxis.set_minor_locator(NullLocator())  # minor log ticks are most of the drawing time
    ax.set(title="update ratio |dW|/|W| per layer", xlabel="step")
    ax.legend(fontsize="small", loc="lower right")
    fig.savefig(path)
    return path


def _filters(Figure: Any, weight: torch.Tensor, path: Path) -> Path:
    # Each filter on its own scale, input channels averaged: the shape of what the layer looks for.
    # One image of tiles, drawn once: an axes per filter would cost ~10x more.
    filters = weight.float().mean(dim=1)
    n, height, width = filters.shape
    low = filters.flatten(1).min(dim=1).values[:, None, None]
    high = filters.flatten(1).max(dim=1).values[:, None, None]
    filters = (filters - low) / (high - low).clamp_min(1e-12)
    cols = min(n, 8)
    rows = math.ceil(n / cols)
    tiles = torch.full((rows * (height + 1) + 1, cols * (width + 1) + 1), float("nan"))
    for i in range(n):
        top, left = 1 + (i // cols) * (height + 1), 1 + (i % cols) * (width + 1)
        tiles[top : top + height, left : left + width] = filters[i]
    fig = Figure(figsize=(cols * 0.7 + 0.2, rows * 0.7 + 0.5), dpi=_PLOT_DPI)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.96 - 0.35 / (rows * 0.7 + 0.5)))
    ax.set_axis_off()
    ax.imshow(tiles.numpy(), cmap="gray", interpolation="nearest")
    fig.suptitle(f"first layer: {n} filters {height}x{width}", fontsize="small")
    fig.savefig(path)
    return path
