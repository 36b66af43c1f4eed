"""The size of the subnetwork each step trained, one panel per run, stage boundaries marked."""
from .figure import figure, save


def unit_parameters(shape):
    """Parameters per query head, per MLP neuron and per active layer. GPT-2: per head its QKV rows and bias
    and its projection rows, 4dC + 3d with d = C/H; per neuron its fc row, bias and projection row, 2C + 1;
    per layer its two LayerNorms and the two output biases, 6C. Llama (no biases): per query head its q and
    projection rows and its share of its group's k and v rows, 2dC + 2dC/g with g query heads per KV head
    (exact for KV-group draws); per neuron its gate, up and down rows, 3C; per layer its two RMSNorms, 2C."""
    H, C = shape["n_head"], shape["n_embd"]
    d = C // H
    if shape["arch"] == "llama":
        g = H // shape["n_kv_head"]
        return 2 * d * C + 2 * d * C / g, 3 * C, 2 * C
    return 4 * d * C + 3 * d, 2 * C + 1, 6 * C


def active_fractions(trace):
    """Per step, the fraction of layers, attention heads, MLP neurons and layer parameters that ran.
    Parameters are the transformer layers' (embeddings and the final norm always run), as unit_parameters
    counts them."""
    H, M = trace.shape["n_head"], trace.shape["mlp_hidden"]
    L = trace["active_layers"].shape[1]
    layers = trace["active_layers"].sum(axis=1)
    heads = trace["active_heads"].sum(axis=1)
    neurons = trace["active_neurons"].sum(axis=1)
    per_head, per_neuron, per_layer = unit_parameters(trace.shape)
    full = L * (H * per_head + M * per_neuron + per_layer)
    return {
        "parameters": (heads * per_head + neurons * per_neuron + layers * per_layer) / full,
        "heads": heads / (L * H),
        "neurons": neurons / (L * M),
        "layers": layers / L,
    }


def plot_subnetwork_size(runs, path):
    fig, axes = figure(len(runs), 1)
    for ax, trace in zip(axes[:, 0], runs):
        for label, fraction in active_fractions(trace).items():
            ax.step(trace["step"], fraction, where="post", linewidth=1, label=label)
        for step in trace.stage_boundaries:
            ax.axvline(step, color="grey", linestyle="--", linewidth=0.8)
        ax.set_title(f"{trace.name} ({trace.arch})")
        ax.set_xlabel("step")
        ax.set_ylabel("active fraction")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize="small", loc="lower right")
    save(fig, path)
