"""`est-analysis compare`: a quality study's table (compare.md, and its numbers in compare.json) and its
validation-loss figures, written as one folder (whole or not at all, see folder.py)."""
import json
from pathlib import Path

from .comparison import Comparison
from .folder import write_folder
from .plots.validation import plot_val_loss_vs_flops, plot_val_loss_vs_time

COLUMNS = ["variant", "seeds done", "final val loss", "Δ val loss vs baseline", "95% CI", "FLOPs saving",
           "time saving", "FLOPs to baseline loss", "time to baseline loss", "compute-matched"]
PLOTS = [("val_loss_vs_flops.png", "Validation loss against training FLOPs"),
         ("val_loss_vs_time.png", "Validation loss against training time")]


def _to_target(cost):
    seeds = f"{cost['reached']}/{cost['seeds']} seeds"
    return "not reached" if cost["fraction"] is None else f"{cost['fraction']:.3f} ({seeds})"


def _difference(row):
    d = row["difference"]
    if row["baseline"]:
        return ["—", "—"]
    if d is None:
        return ["n/a", "n/a"]
    return [f"{d['mean']:+.4f}", "n/a" if d["low"] is None else f"[{d['low']:+.4f}, {d['high']:+.4f}]"]


def _cells(row):
    seeds = f"{row['seeds_done']}/{row['seeds_planned']}"
    if not row["seeds_done"]:
        return [row["variant"], seeds] + ["n/a"] * (len(COLUMNS) - 2)
    return [row["variant"], seeds, f"{row['final_val_loss']:.4f}", *_difference(row),
            f"{row['flops_saving']:.1%}", f"{row['time_saving']:.1%}", _to_target(row["flops_to_baseline_loss"]),
            _to_target(row["time_to_baseline_loss"]),
            f"{'yes' if row['compute_matched'] else 'no'} ({row['flops_ratio']:.2f}× FLOPs)"]


def summary(comparison):
    """The table and a verdict per variant: what the command prints and compare.md holds."""
    lines = [f"Baseline {comparison.baseline.name!r}: mean final validation loss {comparison.target:.4f} over "
             f"{len(comparison.baseline.curves)} seed(s).", "",
             "| " + " | ".join(COLUMNS) + " |", "|---" * len(COLUMNS) + "|"]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in comparison.rows]
    lines += [""] + [f"- {row['variant']}: {row['verdict']}" for row in comparison.rows if not row["baseline"]]
    return "\n".join(lines)


def _markdown(comparison):
    lines = [f"# est comparison: `{comparison.manifest.path}`", "",
             "Every figure comes from the runs' traces; only done runs count. Δ val loss is the mean over seeds of "
             "the variant's final validation loss minus the baseline's at the same seed, with its 95% Student t "
             "interval (none with one seed). Savings are 1 − the variant's mean training FLOPs (time: the sum of "
             "step times, validation excluded) over the baseline's. \"To baseline loss\" is where a run's "
             "validation curve first comes down to the baseline's mean final loss (linear between validations), "
             "over the baseline's mean FLOPs or time, averaged over the seeds that got there.", "",
             summary(comparison), "", "## Figures", "",
             "Lines: the mean over seeds at each validation; bands: the lowest to the highest seed.", ""]
    for name, title in PLOTS:
        lines += [f"### {title}", "", f"![{title}]({name})", ""]
    return "\n".join(lines)


def _numbers(comparison):
    return {"manifest": str(comparison.manifest.path), "baseline": comparison.baseline.name,
            "target_val_loss": comparison.target, "baseline_flops": comparison.base_flops,
            "baseline_seconds": comparison.base_seconds,
            "not_done": [{"name": p.name, "status": p.status} for p in comparison.not_done],
            "variants": comparison.rows}


def _write(folder, comparison):
    plot_val_loss_vs_flops(comparison, folder / PLOTS[0][0])
    plot_val_loss_vs_time(comparison, folder / PLOTS[1][0])
    (folder / "compare.md").write_text(_markdown(comparison))
    (folder / "compare.json").write_text(json.dumps(_numbers(comparison), indent=2) + "\n")


def write_compare(manifest, out=None, force=False, baseline=None):
    """Compare the study of `manifest` in `out` (default: compare/ beside the manifest) with its baseline, or
    with the variant `baseline`; (comparison, out)."""
    comparison = Comparison(manifest, baseline)
    out = Path(out) if out is not None else comparison.manifest.path.parent / "compare"
    return comparison, write_folder(out, force, lambda folder: _write(folder, comparison))


def not_done_warning(comparison):
    """One line naming the runs left out, None when every run is done."""
    if not comparison.not_done:
        return None
    names = ", ".join(f"{p.name} ({p.status})" for p in comparison.not_done)
    return f"{len(comparison.not_done)} run(s) not done, left out: {names}"
