"""Load imbalance: per run, a rank x step heatmap of each rank's compute time over the step's mean (above 1:
slower than the others) and one of the time each rank waited for the others."""
import numpy as np

from .figure import figure, save


def plot_imbalance(runs, path):
    fig, axes = figure(len(runs), 2)
    for (left, right), trace in zip(axes, runs):
        compute = trace["compute_seconds"]
        mean = compute.mean(axis=1, keepdims=True)
        relative = np.divide(compute, mean, out=np.ones_like(compute), where=mean > 0)
        extent = (trace["step"][0] - 0.5, trace["step"][-1] + 0.5, trace.ranks - 0.5, -0.5)
        for ax, values, title, label in ((left, relative, "compute / step mean", "ratio"),
                                         (right, trace["wait_seconds"], "wait", "s")):
            ax.set_title(f"{trace.name}: {title}")
            if trace.ranks == 1:
                # A uniform panel would look like a result; one rank has nobody to be out of step with.
                ax.text(0.5, 0.5, "one rank: no imbalance", ha="center", va="center", transform=ax.transAxes)
                ax.set_xlim(extent[0], extent[1])
            else:
                image = ax.imshow(values.T, aspect="auto", interpolation="nearest", extent=extent, cmap="viridis")
                fig.colorbar(image, ax=ax, label=label)
            ax.set_xlabel("step")
            ax.set_ylabel("rank")
            ax.set_yticks(range(trace.ranks))
    save(fig, path)
