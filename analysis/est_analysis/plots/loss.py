"""Training loss (lines) and validation loss (points) of every run against training FLOPs and against training
time, the baseline overlaid: EST's claim is the loss at equal compute."""
import numpy as np

from .figure import figure, save


def _plot(runs, x_of, xlabel, path):
    fig, axes = figure()
    ax = axes[0, 0]
    for trace in runs:
        x = x_of(trace)
        line, = ax.plot(x, trace["loss"], linewidth=1, label=f"{trace.name} train")
        val = np.isfinite(trace["val_loss"])
        # Above every run's noisy training line, which would hide them.
        ax.plot(x[val], trace["val_loss"][val], "o", color=line.get_color(), markeredgecolor="black", zorder=3,
                label=f"{trace.name} val")
    # A short spike (a stage's first steps) would flatten every curve; the range keeps the initial loss and
    # 99% of the steps, and clips what rises above both.
    losses = np.concatenate([trace["loss"] for trace in runs])
    top = max(np.percentile(losses, 99), max(trace["loss"][0] for trace in runs))
    bottom = losses.min()
    margin = 0.05 * (top - bottom)
    ax.set_ylim(bottom - margin, top + margin)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss (nats/token)")
    ax.legend(fontsize="small")
    save(fig, path)


def plot_loss_vs_flops(runs, path):
    _plot(runs, lambda t: t["flops_cumulative"], "training FLOPs", path)


def plot_loss_vs_time(runs, path):
    _plot(runs, lambda t: np.cumsum(t.step_seconds), "training time (s, validation excluded)", path)
