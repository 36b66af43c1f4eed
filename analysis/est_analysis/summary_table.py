"""The side-by-side table of run summaries (`est-analysis table`).

Each run directory holds the summary.json that `est train` writes. With a baseline, more rows compare every run
with it: FLOPs saving (1 - FLOPs / baseline FLOPs), time saving (1 - training time / baseline training time;
training time excludes start-up and validation, which cost the same in every run), and the baseline's validation
loss at the run's FLOPs (interpolated between the baseline's validations): EST's claim is about loss at equal
compute."""
import json
from pathlib import Path

from .errors import AnalysisError

ROWS = [
    ("architecture", "arch", "{}"),
    ("parameters", "parameters", "{:,d}"),
    ("final train loss", "final_train_loss", "{:.4f}"),
    ("final val loss", "final_val_loss", "{:.4f}"),
    ("steps", "steps", "{:d}"),
    ("tokens", "tokens", "{:,d}"),
    ("training FLOPs", "flops", "{:.3e}"),
    ("wall time (s)", "wall_seconds", "{:.1f}"),
    ("training time (s)", "train_seconds", "{:.1f}"),
    ("tokens/s", "tokens_per_second", "{:,.0f}"),
]


def load(run_dir):
    path = Path(run_dir) / "summary.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise AnalysisError(path, None, "no such file (did the run finish?)")
    except json.JSONDecodeError as e:
        raise AnalysisError(path, None, f"not valid JSON ({e})")


def loss_at_flops(summary, flops):
    """Validation loss of a run after `flops` training FLOPs, linear between its validations (None outside)."""
    points = [(e["flops"], e["val_loss"]) for e in summary.get("evaluations", []) if e["val_loss"] is not None]
    for (f0, l0), (f1, l1) in zip(points, points[1:]):
        if f0 <= flops <= f1:
            return l0 + (l1 - l0) * (flops - f0) / (f1 - f0) if f1 > f0 else l1
    return None


def cell(value, fmt):
    return "n/a" if value is None else fmt.format(value)


def table(run_dirs, baseline=None):
    summaries = [load(d) for d in run_dirs]
    header = ["", *[Path(d).name for d in run_dirs]]
    rows = [[label, *[cell(s.get(key), fmt) for s in summaries]] for label, key, fmt in ROWS]
    if baseline is not None:
        base = load(baseline)
        pct = "{:.1%}"
        rows.append(["FLOPs saving", *[cell(1 - s["flops"] / base["flops"], pct) for s in summaries]])
        rows.append(["time saving", *[cell(1 - s["train_seconds"] / base["train_seconds"], pct) for s in summaries]])
        rows.append(["baseline val loss at these FLOPs",
                     *[cell(loss_at_flops(base, s["flops"]), "{:.4f}") for s in summaries]])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
