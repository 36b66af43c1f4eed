"""Collective traffic of rank 0, data-parallel and tensor-parallel, per step and cumulative; and per step the
data-parallel gradient sum's time (mean rank) against the part of it the backward pass did not hide."""
import numpy as np

from .figure import figure, save


def plot_communication(runs, path):
    fig, axes = figure(1, 3)
    per_step, cumulative, sums = axes[0]
    for trace in runs:
        for key, style in (("dp_bytes", "-"), ("tp_bytes", ":")):
            label = f"{trace.name} {key[:2].upper()}"
            per_step.plot(trace["step"], trace[key], style, linewidth=1, label=label)
            cumulative.plot(trace["step"], np.cumsum(trace[key]), style, linewidth=1, label=label)
        seconds = trace.gradient_sum_seconds
        if seconds is not None:
            line, = sums.plot(trace["step"], seconds[0], "-", linewidth=1, label=f"{trace.name} total")
            sums.plot(trace["step"], seconds[1], "--", linewidth=1, color=line.get_color(),
                      label=f"{trace.name} exposed")
    per_step.set_ylabel("bytes per step")
    cumulative.set_ylabel("bytes so far")
    sums.set_ylabel("gradient sum, s per step")
    if not sums.lines:
        sums.text(0.5, 0.5, "no data-parallel gradient sum", ha="center", va="center", transform=sums.transAxes)
    for ax in (per_step, cumulative, sums):
        ax.set_xlabel("step")
        if ax.lines:
            ax.legend(fontsize="small")
    save(fig, path)
