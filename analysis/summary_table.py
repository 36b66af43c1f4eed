#!/usr/bin/env python3
"""Print the summaries of one or more est runs side by side.

usage: summary_table.py RUN_DIR [RUN_DIR ...]

Each RUN_DIR holds the summary.json that `est train` writes. Standard library only.
"""
import json
import sys
from pathlib import Path

ROWS = [
    ("final train loss", "final_train_loss", "{:.4f}"),
    ("final val loss", "final_val_loss", "{:.4f}"),
    ("steps", "steps", "{:d}"),
    ("tokens", "tokens", "{:,d}"),
    ("training FLOPs", "flops", "{:.3e}"),
    ("wall time (s)", "wall_seconds", "{:.1f}"),
    ("tokens/s", "tokens_per_second", "{:,.0f}"),
]


def load(run_dir):
    path = Path(run_dir) / "summary.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"summary_table: {path}: no such file (did the run finish?)")
    except json.JSONDecodeError as e:
        raise SystemExit(f"summary_table: {path}: not valid JSON ({e})")


def cell(summary, key, fmt):
    value = summary.get(key)
    return "n/a" if value is None else fmt.format(value)


def table(run_dirs):
    summaries = [load(d) for d in run_dirs]
    header = ["", *[Path(d).name for d in run_dirs]]
    rows = [[label, *[cell(s, key, fmt) for s in summaries]] for label, key, fmt in ROWS]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv):
    if not argv:
        raise SystemExit(__doc__.strip())
    print(table(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
