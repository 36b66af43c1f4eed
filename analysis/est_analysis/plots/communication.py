"""Collective traffic of rank 0, data-parallel and tensor-parallel, per step and cumulative."""
import numpy as np

from .figure import figure, save


def plot_communication(runs, path):
    fig, axes = figure(1, 2)
    per_step, cumulative = axes[0]
    for trace in runs:
        for key, style in (("dp_bytes", "-"), ("tp_bytes", ":")):
            label = f"{trace.name} {key[:2].upper()}"
            per_step.plot(trace["step"], trace[key], style, linewidth=1, label=label)
            cumulative.plot(trace["step"], np.cumsum(trace[key]), style, linewidth=1, label=label)
    per_step.set_ylabel("bytes per step")
    cumulative.set_ylabel("bytes so far")
    for ax in (per_step, cumulative):
        ax.set_xlabel("step")
        ax.legend(fontsize="small")
    save(fig, path)
