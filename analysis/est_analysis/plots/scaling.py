"""Scaling efficiency against node count, one colour per study: measured from the traces (solid) and, where a
study simulated its points, simulated (dashed) on the same axes, so the model's error reads off directly."""
from .figure import figure, save


def plot_scaling(studies, path):
    fig, axes = figure()
    ax = axes[0, 0]
    for study in studies:
        nodes = [p.nodes for p in study.manifest.points]
        name = f"{study.manifest.mode}: {study.manifest.path.parent.name}"
        colour = None
        for kind, values, style in (("measured", study.measured, "o-"), ("simulated", study.simulated, "s--")):
            points = [(n, e) for n, e in sorted(zip(nodes, values)) if e is not None]
            if points:
                line, = ax.plot(*zip(*points), style, color=colour, label=f"{name}, {kind}")
                colour = line.get_color()
    ax.axhline(1.0, color="grey", linestyle=":", linewidth=0.8)
    ax.set_title("scaling efficiency")
    ax.set_xticks(sorted({p.nodes for study in studies for p in study.manifest.points}))
    ax.set_xlabel("nodes")
    ax.set_ylabel("efficiency")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small")
    save(fig, path)
