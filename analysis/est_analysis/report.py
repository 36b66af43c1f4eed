"""`est-analysis report`: the plots and report.md of one or more runs and scaling studies, written as one folder
(whole or not at all, see folder.py). All inputs are read and checked before anything is written."""
from .folder import write_folder
from .plots.communication import plot_communication
from .plots.imbalance import plot_imbalance
from .plots.loss import plot_loss_vs_flops, plot_loss_vs_time
from .plots.scaling import plot_scaling
from .plots.subnetwork import plot_subnetwork_size
from .run_figures import run_figures
from .scaling import Study
from .trace import Trace

FORMATS = {
    "architecture": "{}", "steps": "{:d}", "ranks": "{:d}", "tokens": "{:d}", "final train loss": "{:.4f}", "final val loss": "{:.4f}",
    "training FLOPs": "{:.4e}", "FLOPs saved vs full model": "{:.2%}", "training time (s)": "{:.4f}",
    "mean step time (s)": "{:.6f}", "tokens/s": "{:.1f}", "mean imbalance": "{:.4f}",
    "gradient sum per step (s)": "{:.6f}", "gradient sum exposed per step (s)": "{:.6f}", "gradient sum hidden": "{:.2%}",
    "FLOPs saved vs baseline": "{:.2%}", "time saved vs baseline": "{:.2%}",
    "final train loss delta vs baseline": "{:+.4f}", "final val loss delta vs baseline": "{:+.4f}",
    "scaling efficiency (measured)": "{:.4f}", "scaling efficiency (simulated)": "{:.4f}",
}

PLOTS = [
    ("loss_vs_flops.png", "Loss against training FLOPs"),
    ("loss_vs_time.png", "Loss against training time"),
    ("subnetwork_size.png", "Active subnetwork per step"),
    ("imbalance.png", "Per-rank load imbalance"),
    ("communication.png", "Collective traffic, and the data-parallel gradient sum's time against its exposed part"),
]


def _cell(label, value):
    return "n/a" if value is None else FORMATS[label].format(value)


def _runs_table(columns, baseline):
    """Markdown: a row per figure, a column per run; columns are (trace, extra figures)."""
    figures = [{**run_figures(trace, baseline), **extra} for trace, extra in columns]
    labels = list(dict.fromkeys(label for f in figures for label in f))
    lines = ["| figure | " + " | ".join(trace.name for trace, _ in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    lines += ["| " + label + " | " + " | ".join(_cell(label, f.get(label)) for f in figures) + " |"
              for label in labels]
    return lines


def _scaling_table(study):
    lines = ["| nodes | ranks | mean step time (s) | efficiency (measured) | simulated step time (s) | "
             "efficiency (simulated) |", "|---|---|---|---|---|---|"]
    for point, seconds, measured, simulated in zip(study.manifest.points, study.step_seconds, study.measured,
                                                   study.simulated):
        sim = "n/a" if point.simulated_step_seconds is None else f"{point.simulated_step_seconds:.6f}"
        lines.append(f"| {point.nodes} | {point.ranks} | {seconds:.6f} | "
                     f"{_cell('scaling efficiency (measured)', measured)} | {sim} | "
                     f"{_cell('scaling efficiency (simulated)', simulated)} |")
    return lines


def _markdown(runs, studies, baseline, plots):
    lines = ["# est report", ""]
    if baseline is not None:
        lines += [f"Baseline: `{baseline.path}` (column {baseline.name}). Savings and deltas are against it.", ""]
    lines += ["Figures are computed from the traces. Training time is the sum over steps of the slowest rank's "
              "compute, communication and wait time (validation and start-up excluded); tokens/s is the tokens "
              "trained over that time; imbalance is the slowest rank's compute time over the mean rank's. "
              "The gradient sum is the data-parallel sum of the gradient (mean rank): its own time, the part of it "
              "the backward pass did not hide (exposed), and the fraction it hid.", "",
              "## Runs", ""]
    columns = [(t, {}) for t in runs]
    for study in studies:
        columns += [(t, {"scaling efficiency (measured)": m, "scaling efficiency (simulated)": s})
                    for t, m, s in zip(study.traces, study.measured, study.simulated)]
    if baseline is not None:
        columns.append((baseline, {}))
    lines += _runs_table(columns, baseline) + [""]
    for study in studies:
        lines += [f"## Scaling: {study.manifest.mode}, `{study.manifest.path}`", ""]
        lines += _scaling_table(study) + [""]
    lines += ["## Plots", ""]
    for name, title in plots:
        lines += [f"### {title}", "", f"![{title}]({name})", ""]
    return "\n".join(lines)


def _draw(directory, runs, studies, baseline):
    traces = runs + [t for s in studies for t in s.traces] + ([baseline] if baseline is not None else [])
    plot_loss_vs_flops(traces, directory / "loss_vs_flops.png")
    plot_loss_vs_time(traces, directory / "loss_vs_time.png")
    plot_subnetwork_size(traces, directory / "subnetwork_size.png")
    plot_imbalance(traces, directory / "imbalance.png")
    plot_communication(traces, directory / "communication.png")
    plots = list(PLOTS)
    if studies:
        plot_scaling(studies, directory / "scaling.png")
        plots.append(("scaling.png", "Scaling efficiency"))
    (directory / "report.md").write_text(_markdown(runs, studies, baseline, plots))


def write_report(inputs, out, baseline=None, force=False):
    """Report on INPUTs (trace.h5, run directories, manifest.json) in the folder `out`."""
    runs = [Trace(p) for p in inputs if not str(p).endswith(".json")]
    studies = [Study(p) for p in inputs if str(p).endswith(".json")]
    base = Trace(baseline) if baseline is not None else None
    return write_folder(out, force, lambda folder: _draw(folder, runs, studies, base))
