"""The training report's plots (sweeps/trial/_plots.py): what their axes read, and that a figure redrawn
for each trial draws what a new one would."""

import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import imread

from sweeps.trial._plots import (
    _log_scale,
    _loss_curve_figure,
    _LossCurveFigure,
    _UpdateRatioFigure,
    loss_curve,
    update_ratios,
)


def test_plots_log_axes_label_their_decades_in_plain_text():
    # Plain text, not math text ($10^{-3}$): the parser cost a quarter of an update-ratio plot.
    fig = Figure()
    ax = fig.subplots()
    ax.plot([1, 2, 3], [3e-2, 1e-3, 4e-5])
    _log_scale(ax)
    FigureCanvasAgg(fig).draw()
    low, high = ax.get_ylim()
    labels = [t.get_text() for t, y in zip(ax.get_yticklabels(), ax.get_yticks()) if low <= y <= high]
    assert labels == ["1e−04", "1e−03", "1e−02"]
    assert ax.yaxis.get_minorticklocs().size == 0


def test_plots_log_axes_within_two_decades_label_1_2_and_5_times_each_decade():
    # A learning rate decayed 10x stays within one decade: decade ticks alone left it one label or none.
    values = [4e-2, 1e-2, 3.5e-3]
    fig = Figure()
    ax = fig.subplots()
    ax.plot([1, 2, 3], values)
    _log_scale(ax, values)
    FigureCanvasAgg(fig).draw()
    low, high = ax.get_ylim()
    labels = [t.get_text() for t, y in zip(ax.get_yticklabels(), ax.get_yticks()) if low <= y <= high]
    assert labels == ["5e−03", "1e−02", "2e−02"]
    _log_scale(ax, [3e-2, 1e-3, 4e-5])  # wider again: decades only
    FigureCanvasAgg(fig).draw()
    assert [y for y in ax.get_yticks() if low <= y <= high] == [1e-2]


def _loss_data(n_epochs: int, best_epoch: int | None, lr_floor: float) -> dict:
    epochs = list(range(1, n_epochs + 1))
    return {"epochs": epochs, "train_loss": [2.0 / e for e in epochs], "val_loss": [2.5 / e + 0.1 for e in epochs],
            "metric": f"val_metric_{n_epochs}", "metric_values": [1 - 1 / (e + 1) for e in epochs],
            "lr": [lr_floor + 0.05 * 0.8**e for e in epochs], "best_epoch": best_epoch}


def test_plots_loss_curve_redrawn_on_the_process_figure_matches_a_figure_drawn_anew(tmp_path):
    # One figure per process, redrawn per trial: each picture must be the one a new figure draws, whatever
    # came before (a best epoch or none, a log or a linear learning-rate axis, 1 epoch or 40).
    jobs = [_loss_data(12, 9, 0.001), _loss_data(3, None, 0.001), _loss_data(40, 33, -0.001),
            _loss_data(1, 1, 0.001), _loss_data(12, 9, 0.001)]
    for k, data in enumerate(jobs):
        loss_curve(data, tmp_path / f"shared{k}.png")
        _LossCurveFigure().draw(data, tmp_path / f"new{k}.png")
        shared, new = imread(tmp_path / f"shared{k}.png"), imread(tmp_path / f"new{k}.png")
        assert shared.shape == new.shape and (shared == new).all(), k
    assert _loss_curve_figure.cache_info().currsize == 1
    # Each picture shows its own trial: the first two differ, the first and the last (same numbers) do not.
    first, second, last = (imread(tmp_path / f"shared{k}.png") for k in (0, 1, 4))
    assert (first != second).any() and (first == last).all()


def _ratio_data(layers: list[str], seed: int, low: float = 1e-4, no_finite: str | None = None) -> dict:
    steps = list(range(0, 300, 10))
    ratios = {layer: [10 ** -(1 + (seed + i * 7 + s) % 40 / 10) for s in steps] for i, layer in enumerate(layers)}
    if no_finite is not None:
        ratios[no_finite] = [math.nan] * len(steps)
    return {"steps": steps, "ratios": ratios, "low": low, "high": 1e-2}


def test_plots_update_ratios_redrawn_on_the_process_figure_match_a_figure_drawn_anew(tmp_path):
    # A layer without a finite ratio is left out and the next ones keep the colours a new figure gives
    # them; other layers or another band get a figure of their own.
    jobs = [_ratio_data(["a", "b", "c"], 0), _ratio_data(["a", "b", "c"], 1, no_finite="b"),
            _ratio_data(["a", "b"], 2), _ratio_data(["a", "b"], 3, low=1e-5), _ratio_data(["a", "b", "c"], 0)]
    for k, data in enumerate(jobs):
        update_ratios(data, tmp_path / f"shared{k}.png")
        _UpdateRatioFigure(tuple(data["ratios"]), data["low"], data["high"]).draw(data, tmp_path / f"new{k}.png")
        shared, new = imread(tmp_path / f"shared{k}.png"), imread(tmp_path / f"new{k}.png")
        assert shared.shape == new.shape and (shared == new).all(), k
    first, second, last = (imread(tmp_path / f"shared{k}.png") for k in (0, 1, 4))
    assert (first != second).any() and (first == last).all()
