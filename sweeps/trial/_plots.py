"""The training report's plots, drawn from plain numbers (no torch, no Optuna): the loss curve, the
update ratios and the first layer's filters.

A sweep draws them off the trial's critical path, in a renderer process (``sweeps.trial._render``) that
runs this module: ``python -m sweeps.trial._plots`` reads one JSON job per line on stdin, draws each plot,
writes it into the artifact store under the artifact id that the trial already holds, saves the
trial's note in the study's storage (after the plots: a note never links a plot still a placeholder),
and answers one JSON line per job on stdout (``{"job": id, "error": null | "why"}``). Each job runs in the
folder it names (``cwd``); a line ``{"forget": true}`` drops the studies opened so far. Only matplotlib
and numpy are imported at start, so the process starts in about a second; Optuna with the first note,
and never scikit-learn (:func:`_without_sklearn`).
"""

from __future__ import annotations

import functools
import json
import math
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sweeps._heap import leave

__all__ = ["PLACEHOLDER_PNG", "draw", "main"]

PLOT_DPI = 80
# A 1x1 transparent PNG: the content of a plot's artifact until the renderer replaces it.
PLACEHOLDER_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63606060600000000500"
    "017aa857500000000049454e44ae426082"
)


def _figure() -> Any:
    # Figure, not pyplot: no global state. Imported on first use (~0.3 s).
    from matplotlib.figure import Figure

    return Figure


_TITLE = {"y": 1.0, "pad": 6}  # a y given: no automatic title position


def _fixed_labels(ax: Any, title: str | None, xlabel: str, xlabel_y: float) -> None:
    """Title and x label at fixed places: left to matplotlib, each draw measures every tick label's
    box to place them (a third of a loss curve's drawing time), and these plots' tick labels keep one
    height."""
    if title is not None:
        ax.set_title(title, **_TITLE)
    ax.set_xlabel(xlabel)
    ax.xaxis.set_label_coords(0.5, xlabel_y)
    ax.yaxis.set_label_coords(-0.1, 0.5)  # no y label; placing an empty one measures the ticks too


def _save_png(figure: Any, path: Path) -> None:
    # zlib level 1: a fifth of the drawing time at level 6 saved, for files about 10% larger.
    figure.savefig(path, format="png", pil_kwargs={"compress_level": 1})


def _log_scale(ax: Any, values: list[float] | None = None) -> None:
    """A log y axis with its ticks labelled in plain text (``1e−03``): matplotlib's default labels
    (``10^{-3}``) go through its math-text parser, a quarter of an update-ratio plot's drawing time, and
    minor ticks are most of the rest. Ticks at decades; where ``values`` span less than two decades (a
    learning rate decayed 10x), at 1, 2 and 5 times each decade, so that the axis has labels to read."""
    from matplotlib.ticker import LogFormatter, LogLocator, NullLocator

    ax.set_yscale("log")
    narrow = bool(values) and max(values) < 100 * min(values)
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if narrow else (1.0,)))
    ax.yaxis.set_minor_locator(NullLocator())
    # Every tick labelled: the locator chose them (the formatter would otherwise thin out 2x and 5x ticks).
    ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(math.inf, math.inf)))


class _LossCurveFigure:
    """The loss-curve figure, built once per process and redrawn with each trial's numbers: building
    its three axes and their ticks is about 40% of drawing it anew each time."""

    def __init__(self) -> None:
        from matplotlib.ticker import MaxNLocator

        self.figure = fig = _figure()(figsize=(11, 3.2), dpi=PLOT_DPI)
        # A fixed layout: a layout engine costs ~0.1 s.
        fig.subplots_adjust(left=0.06, right=0.98, bottom=0.16, top=0.9, wspace=0.25)
        self.axes = loss_ax, metric_ax, lr_ax = fig.subplots(1, 3)
        for ax, title in zip(self.axes, ("loss", None, "learning rate")):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            _fixed_labels(ax, title, "epoch", -0.12)
        (self.train,) = loss_ax.plot([], [], marker=".", label="train")
        (self.val,) = loss_ax.plot([], [], marker=".", label="validation")
        self.best = [ax.axvline(0, color="grey", linestyle=":", label="best epoch") for ax in (loss_ax, metric_ax)]
        (self.metric,) = metric_ax.plot([], [], marker=".", color="tab:green")
        (self.lr,) = lr_ax.plot([], [], marker=".", color="tab:purple")

    def draw(self, data: dict[str, Any], path: Path) -> None:
        loss_ax, metric_ax, lr_ax = self.axes
        epochs, best = data["epochs"], data["best_epoch"]
        self.train.set_data(epochs, data["train_loss"])
        self.val.set_data(epochs, data["val_loss"])
        self.metric.set_data(epochs, data["metric_values"])
        self.lr.set_data(epochs, data["lr"])
        for line in self.best:
            line.set_visible(best is not None)
            line.set_xdata([best or 0, best or 0])
        handles = [self.train, self.val, *self.best[:1]] if best is not None else [self.train, self.val]
        loss_ax.legend(handles=handles, loc="upper right")  # a fixed place: "best" searches and costs
        metric_ax.set_title(data["metric"], **_TITLE)
        for ax in self.axes:
            ax.relim(visible_only=True)
        if all(lr > 0 for lr in data["lr"]):
            _log_scale(lr_ax, data["lr"])
        else:
            lr_ax.set_yscale("linear")
        for ax in self.axes:
            ax.autoscale_view()
        _save_png(self.figure, path)


@functools.cache
def _loss_curve_figure() -> _LossCurveFigure:
    return _LossCurveFigure()  # this process's figure, made on the first plot


def loss_curve(data: dict[str, Any], path: Path) -> None:
    """``data``: ``epochs``, ``train_loss``, ``val_loss``, ``metric`` (its name), ``metric_values``,
    ``lr`` (one per epoch) and ``best_epoch`` (or None)."""
    _loss_curve_figure().draw(data, path)


class _UpdateRatioFigure:
    """The update-ratio figure for one set of layers and one healthy band, built once per process and
    redrawn with each trial's numbers (a sweep's trials share both)."""

    def __init__(self, layers: tuple[str, ...], low: float, high: float) -> None:
        self.figure = fig = _figure()(figsize=(7, 3.6), dpi=PLOT_DPI)
        fig.subplots_adjust(left=0.1, right=0.97, bottom=0.14, top=0.9)
        self.ax = ax = fig.subplots()
        self.lines = [ax.plot([], [], label=label, linewidth=1)[0] for label in layers]
        self.band = ax.axhspan(low, high, color="tab:green", alpha=0.12, label=f"[{low:.0e}, {high:.0e}]")
        ax.axhline(1e-3, color="tab:green", linestyle=":", linewidth=1)
        _log_scale(ax)
        _fixed_labels(ax, "update ratio |dW|/|W| per layer", "step", -0.1)

    def draw(self, data: dict[str, Any], path: Path) -> None:
        shown = []
        for line, ratios in zip(self.lines, data["ratios"].values()):
            finite = [(s, r) for s, r in zip(data["steps"], ratios) if r > 0 and math.isfinite(r)]
            line.set_visible(bool(finite))
            if not finite:
                line.set_data([], [])
                continue
            line.set_data(*zip(*finite))
            line.set_color(f"C{len(shown)}")  # the colours a new figure gives the layers it draws, in order
            shown.append(line)
        self.ax.legend(handles=[*shown, self.band], fontsize="small", loc="lower right")
        self.ax.relim(visible_only=True)
        self.ax.autoscale_view()
        _save_png(self.figure, path)


@functools.lru_cache(maxsize=1)  # the last layers' figure of this process
def _update_ratio_figure(layers: tuple[str, ...], low: float, high: float) -> _UpdateRatioFigure:
    return _UpdateRatioFigure(layers, low, high)


def update_ratios(data: dict[str, Any], path: Path) -> None:
    """``data``: ``steps`` (the sampled steps), ``ratios`` (layer -> one ratio per sampled step),
    ``low`` and ``high`` (the healthy band)."""
    _update_ratio_figure(tuple(data["ratios"]), data["low"], data["high"]).draw(data, path)


def filters(data: dict[str, Any], path: Path) -> None:
    """``data``: ``filters``, the first conv layer's weights averaged over input channels (n x h x w)."""
    import numpy as np

    # Each filter on its own scale: the shape of what the layer looks for. One image of tiles,
    # drawn once: an axes per filter would cost ~10x more.
    weights = np.asarray(data["filters"], dtype=np.float64)
    n, height, width = weights.shape
    flat = weights.reshape(n, -1)
    low, high = flat.min(axis=1)[:, None, None], flat.max(axis=1)[:, None, None]
    weights = (weights - low) / np.maximum(high - low, 1e-12)
    cols = min(n, 8)
    rows = math.ceil(n / cols)
    tiles = np.full((rows * (height + 1) + 1, cols * (width + 1) + 1), np.nan)
    for i in range(n):
        top, left = 1 + (i // cols) * (height + 1), 1 + (i % cols) * (width + 1)
        tiles[top : top + height, left : left + width] = weights[i]
    fig = _figure()(figsize=(cols * 0.7 + 0.2, rows * 0.7 + 0.5), dpi=PLOT_DPI)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.96 - 0.35 / (rows * 0.7 + 0.5)))
    ax.set_axis_off()
    ax.imshow(tiles, cmap="gray", interpolation="nearest")
    fig.suptitle(f"first layer: {n} filters {height}x{width}", fontsize="small")
    _save_png(fig, path)


DRAW: dict[str, Callable[[dict[str, Any], Path], None]] = {
    "loss_curve.png": loss_curve, "update_ratio.png": update_ratios, "first_layer_filters.png": filters,
}


def draw(name: str, data: dict[str, Any], path: Path) -> None:
    """Draws plot ``name`` (a key of :data:`DRAW`) from ``data`` into the PNG file ``path``."""
    DRAW[name](data, path)


def _render_job(job: dict[str, Any]) -> None:
    """Draws a job's plots and writes each into the file-system artifact store at ``job["store"]``,
    then saves the trial's note (``job["note"]``), if the job has one."""
    from optuna.artifacts import FileSystemArtifactStore  # light: no storage backends are loaded

    store = FileSystemArtifactStore(job["store"])
    with tempfile.TemporaryDirectory(prefix="sweeps-plots-") as tmp:
        for plot in job["plots"]:
            path = Path(tmp) / plot["name"]
            draw(plot["name"], plot["data"], path)
            with open(path, "rb") as f:
                store.write(plot["artifact_id"], f)
    if job.get("note"):
        _save_note(job["note"])


_STUDIES: dict[tuple[str, str], Any] = {}  # (storage string, study name) -> the study this process loaded


def _save_note(note: dict[str, Any]) -> None:
    """Saves a finished trial's note with optuna-dashboard (a note is a study attribute: writable after
    the trial ended), in the storage the trial lives in (``storage``, ``study``, ``trial``: its number).
    Optuna and the storage are loaded on the first note only."""
    import optuna
    from optuna_dashboard import save_note

    from sweeps.storage._url import open_storage

    key = (note["storage"], note["study"])
    if key not in _STUDIES:  # opened and loaded once per study, not per note
        storage = open_storage(note["storage"])
        # A random sampler: a Trial object starts its sampler, and TPE's would read the whole study.
        study = optuna.load_study(study_name=note["study"], storage=storage, sampler=optuna.samplers.RandomSampler())
        _STUDIES[key] = (study, storage, storage.get_study_id_from_name(note["study"]))
    study, storage, study_id = _STUDIES[key]
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, note["trial"])
    save_note(optuna.trial.Trial(study, trial_id), note["body"])


def _forget() -> None:
    """Drops the studies opened so far and closes their database connections: a file the next sweep
    removes and makes again is opened anew, and this process holds no file of a finished sweep."""
    for _, storage, _ in _STUDIES.values():
        engine = getattr(getattr(storage, "backend", storage), "engine", None)  # an RDBStorage's SQLAlchemy engine
        if engine is not None:
            engine.dispose()
    _STUDIES.clear()


def _without_sklearn() -> None:
    """Keeps scikit-learn out of this process. optuna-dashboard imports ``optuna.importance``, whose
    fANOVA evaluator imports scikit-learn's ensembles: 1.7 s of CPU at every renderer start (one per
    sweep and per worker, beside the trials' training), for importances a note never computes. A
    module set to None in ``sys.modules`` fails to import, which Optuna takes as its optional
    dependency being absent; fANOVA alone would then say so, and nothing here calls it."""
    sys.modules.setdefault("sklearn", None)


def main() -> int:
    """The renderer process: jobs on stdin, one answer per job on stdout, until stdin closes."""
    # Ctrl-C reaches the whole process group: the sweep handles it and closes stdin; the plots of
    # the trials that finished are still drawn.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _without_sklearn()
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        if job.get("forget"):  # the sweep that submitted the jobs so far has ended
            _forget()
            continue
        error = None
        try:
            os.chdir(job.get("cwd") or ".")  # the folder of the sweep that submitted it: relative paths hold
            _render_job(job)
        except Exception as exc:  # one bad plot must not stop the others; the parent reports it
            error = f"{type(exc).__name__}: {exc}"[:300]
        print(json.dumps({"job": job["job"], "error": error}), flush=True)
    return 0


if __name__ == "__main__":
    leave(main())
