"""A run's headline figures, computed from its trace (and a baseline's): what report.md tabulates."""
import numpy as np


def final_val_loss(trace):
    """The last validation loss of the run, None if it never validated."""
    val = trace["val_loss"][np.isfinite(trace["val_loss"])]
    return float(val[-1]) if len(val) else None


def train_seconds(trace):
    return float(trace.step_seconds.sum())


def run_figures(trace, baseline=None):
    """Label -> value (None where it does not apply), in the report's order. Savings are fractions."""
    flops = float(trace["flops_cumulative"][-1])
    seconds = train_seconds(trace)
    val = final_val_loss(trace)
    figures = {
        "architecture": trace.arch,
        "steps": int(trace["step"][-1]),
        "ranks": trace.ranks,
        "tokens": int(trace["tokens"][-1]),
        "final train loss": float(trace["loss"][-1]),
        "final val loss": val,
        "training FLOPs": flops,
        "FLOPs saved vs full model": 1.0 - float(trace["flops"].sum()) / float(trace["flops_full"].sum()),
        "training time (s)": seconds,
        "mean step time (s)": float(trace.step_seconds.mean()),
        "tokens/s": int(trace["tokens"][-1]) / seconds if seconds > 0 else None,
        "mean imbalance": float(trace.imbalance.mean()),
    }
    sums = trace.gradient_sum_seconds
    total, exposed = (float(x.mean()) for x in sums) if sums is not None else (None, None)
    figures.update({
        "gradient sum per step (s)": total,
        "gradient sum exposed per step (s)": exposed,
        "gradient sum hidden": None if total is None else 1.0 - exposed / total,
    })
    if baseline is not None:
        base_val = final_val_loss(baseline)
        figures.update({
            "FLOPs saved vs baseline": 1.0 - flops / float(baseline["flops_cumulative"][-1]),
            "time saved vs baseline": 1.0 - seconds / train_seconds(baseline),
            "final train loss delta vs baseline": float(trace["loss"][-1]) - float(baseline["loss"][-1]),
            "final val loss delta vs baseline": None if val is None or base_val is None else val - base_val,
        })
    return figures
