"""The size of the subnetwork each step trained, one panel per run, stage boundaries marked."""
from .figure import figure, save


def active_fractions(trace):
    """Per step, the fraction of layers, attention heads, MLP neurons and layer parameters that ran.
    Parameters are the transformer layers' (embeddings and the final norm always run): per head, its
    QKV rows and bias and its projection rows, 4dC + 3d with d = C/H; per neuron, its fc row, bias and
    projection row, 2C + 1; per active layer, its two LayerNorms and the two output biases, 6C."""
    H, C = trace.shape["n_head"], trace.shape["n_embd"]
    L = trace["active_layers"].shape[1]
    d = C // H
    layers = trace["active_layers"].sum(axis=1)
    heads = trace["active_heads"].sum(axis=1)
    neurons = trace["active_neurons"].sum(axis=1)
    per_head, per_neuron, per_layer = 4 * d * C + 3 * d, 2 * C + 1, 6 * C
    full = L * (H * per_head + 4 * C * per_neuron + per_layer)
    return {
        "parameters": (heads * per_head + neurons * per_neuron + layers * per_layer) / full,
        "heads": heads / (L * H),
        "neurons": neurons / (L * 4 * C),
        "layers": layers / L,
    }


def plot_subnetwork_size(runs, path):
    fig, axes = figure(len(runs), 1)
    for ax, trace in zip(axes[:, 0], runs):
        for label, fraction in active_fractions(trace).items():
            ax.step(trace["step"], fraction, where="post", linewidth=1, label=label)
        for step in trace.stage_boundaries:
            ax.axvline(step, color="grey", linestyle="--", linewidth=0.8)
        ax.set_title(trace.name)
        ax.set_xlabel("step")
        ax.set_ylabel("active fraction")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize="small", loc="lower right")
    save(fig, path)
