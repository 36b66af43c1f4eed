"""A quality study's validation loss against training FLOPs and against training time: per variant the mean
over seeds at each validation, and a band from the lowest to the highest seed (with two or three seeds a t
interval would be wider than everything plotted). The baseline's mean final loss is drawn across: where a
curve crosses it is the cost `compare` tabulates."""
from functools import reduce

import numpy as np

from .figure import figure, save


def mean_curve(curves, x_of):
    """(x, mean loss, lowest, highest) at the validation steps every seed has; x is the seeds' mean."""
    steps = reduce(np.intersect1d, [c.step for c in curves])
    rows = [np.isin(c.step, steps) for c in curves]
    x = np.mean([x_of(c)[r] for c, r in zip(curves, rows)], axis=0)
    losses = np.array([c.loss[r] for c, r in zip(curves, rows)])
    return x, losses.mean(axis=0), losses.min(axis=0), losses.max(axis=0)


def _plot(comparison, x_of, xlabel, path):
    fig, axes = figure(width=6, height=4)
    ax = axes[0, 0]
    for runs in comparison.variants:
        if not runs.curves:
            continue
        x, loss, low, high = mean_curve(list(runs.curves.values()), x_of)
        is_base = runs is comparison.baseline
        label = f"{runs.name}{' (baseline)' if is_base else ''}, {len(runs.curves)} seed(s)"
        line, = ax.plot(x, loss, "o-", markersize=3, linewidth=1.5 if is_base else 1,
                        color="black" if is_base else None, label=label, zorder=3 if is_base else 2)
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.axhline(comparison.target, color="grey", linestyle=":", linewidth=0.8, label="baseline's final loss")
    ax.set_title("validation loss: mean over seeds, band min–max", fontsize="medium")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("validation loss (nats/token)")
    ax.legend(fontsize="small")
    save(fig, path)


def plot_val_loss_vs_flops(comparison, path):
    _plot(comparison, lambda c: c.flops, "training FLOPs", path)


def plot_val_loss_vs_time(comparison, path):
    _plot(comparison, lambda c: c.seconds, "training time (s, validation excluded)", path)
