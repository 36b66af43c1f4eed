"""Scaling efficiency against node count, one line per study: measured from the traces and, where a study
simulated its points, simulated, side by side."""
from .figure import figure, save


def plot_scaling(studies, path):
    fig, axes = figure(1, 2)
    for ax, title in ((axes[0, 0], "measured"), (axes[0, 1], "simulated")):
        for study in studies:
            nodes = [p.nodes for p in study.manifest.points]
            values = study.measured if title == "measured" else study.simulated
            points = [(n, e) for n, e in sorted(zip(nodes, values)) if e is not None]
            if points:
                ax.plot(*zip(*points), "o-", label=f"{study.manifest.mode}: {study.manifest.path.parent.name}")
        if ax.lines:
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, "not simulated", ha="center", va="center", transform=ax.transAxes)
        ax.axhline(1.0, color="grey", linestyle="--", linewidth=0.8)
        ax.set_title(f"scaling efficiency, {title}")
        ax.set_xticks(sorted({p.nodes for study in studies for p in study.manifest.points}))
        ax.set_xlabel("nodes")
        ax.set_ylabel("efficiency")
        ax.set_ylim(bottom=0)
    save(fig, path)
