import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "analysis"))
import summary_table  # noqa: E402


def write_run(path, **values):
    path.mkdir()
    (path / "summary.json").write_text(json.dumps(values))
    return path


def test_table_shows_each_run_as_a_column(tmp_path):
    a = write_run(tmp_path / "est", final_train_loss=1.5, final_val_loss=1.75, steps=10, tokens=2048,
                  flops=1.25e12, wall_seconds=12.34, tokens_per_second=1000.4)
    b = write_run(tmp_path / "full", final_train_loss=1.25, final_val_loss=None, steps=10, tokens=2048,
                  flops=2.5e12, wall_seconds=20.0, tokens_per_second=600.0)
    lines = summary_table.table([a, b]).splitlines()
    assert lines[0].split() == ["est", "full"]
    rows = {line[:16].strip(): line[16:].split() for line in lines[2:]}
    assert rows["final val loss"] == ["1.7500", "n/a"]
    assert rows["training FLOPs"] == ["1.250e+12", "2.500e+12"]
    assert rows["tokens/s"] == ["1,000", "600"]


def test_missing_summary_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="summary.json: no such file"):
        summary_table.table([tmp_path])
