import json

import pytest
from conftest import est_analysis
from est_analysis import summary_table
from est_analysis.errors import AnalysisError


def write_run(path, **values):
    path.mkdir()
    (path / "summary.json").write_text(json.dumps(values))
    return path


def rows_of(text):
    lines = text.splitlines()
    width = len(lines[1].split()[0])
    return lines[0].split(), {line[:width].strip(): line[width:].split() for line in lines[2:]}


@pytest.fixture
def runs(tmp_path):
    est = write_run(tmp_path / "est", final_train_loss=1.5, final_val_loss=1.75, steps=10, tokens=2048,
                    flops=1.25e12, wall_seconds=12.34, train_seconds=6.0, tokens_per_second=1000.4)
    full = write_run(tmp_path / "full", final_train_loss=1.25, final_val_loss=None, steps=10, tokens=2048,
                     flops=2.5e12, wall_seconds=20.0, train_seconds=8.0, tokens_per_second=600.0,
                     evaluations=[{"step": 5, "val_loss": 2.0, "flops": 1.0e12},
                                  {"step": 10, "val_loss": 1.5, "flops": 2.5e12}])
    return est, full


def test_table_shows_each_run_as_a_column(runs):
    header, rows = rows_of(summary_table.table(runs))
    assert header == ["est", "full"]
    assert rows["final val loss"] == ["1.7500", "n/a"]
    assert rows["training FLOPs"] == ["1.250e+12", "2.500e+12"]
    assert rows["tokens/s"] == ["1,000", "600"]
    assert "FLOPs saving" not in rows


def test_savings_against_a_baseline(runs):
    _, rows = rows_of(summary_table.table(runs, baseline=runs[1]))
    assert rows["FLOPs saving"] == ["50.0%", "0.0%"]
    assert rows["time saving"] == ["25.0%", "0.0%"]
    # 1.25e12 lies a sixth of the way from 1.0e12 (2.0) to 2.5e12 (1.5).
    assert rows["baseline val loss at these FLOPs"] == [f"{2.0 - 0.5 / 6:.4f}", "1.5000"]


def test_loss_outside_the_baseline_evaluations_is_not_invented(runs):
    assert summary_table.loss_at_flops(summary_table.load(runs[1]), 0.5e12) is None


def test_missing_summary_is_a_clear_error(tmp_path):
    with pytest.raises(AnalysisError, match="summary.json: no such file"):
        summary_table.table([tmp_path])


def test_the_table_command_prints_the_table(runs):
    r = est_analysis("table", *runs, "--baseline", runs[1])
    assert r.returncode == 0, r.stderr
    assert r.stdout == summary_table.table(runs, baseline=runs[1]) + "\n"


def test_the_table_command_reports_a_missing_summary_with_status_2(tmp_path):
    r = est_analysis("table", tmp_path)
    assert r.returncode == 2
    assert r.stderr == f"est-analysis: error: {tmp_path / 'summary.json'}: no such file (did the run finish?)\n"
