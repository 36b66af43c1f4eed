"""`est schedule solve`: the schedule it writes saves the target as `est flops` counts it; bad targets write nothing."""
import json
from pathlib import Path

from conftest import run_est

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "configs" / "quickstart.yaml"


def flops_saving(schedule):
    r = run_est("flops", "--config", QUICKSTART, "--set", f"est.schedule={schedule}", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["saving"]


def test_solved_schedule_saves_the_target(tmp_path):
    out = tmp_path / "solved.yaml"
    r = run_est("schedule", "solve", "--config", QUICKSTART, "--saving", "0.3", "--out", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"est: wrote {out} ")
    saving = flops_saving(out)
    assert abs(saving - 0.3) < 0.005
    assert f"saving {saving:.5f}" in r.stdout
    text = out.read_text()
    assert f"# saving: {saving:.5f}" in text
    assert f"# command: est schedule solve --config {QUICKSTART} --saving 0.3 " in text
    assert list(tmp_path.iterdir()) == [out]


def test_without_out_the_schedule_goes_to_stdout(tmp_path):
    r = run_est("schedule", "solve", "--config", QUICKSTART, "--saving", "0.25", "--stage1", "0.1", "--p-layers", "0.75")
    assert r.returncode == 0, r.stderr
    assert "\nstages:\n  - until: 0.100\n" in r.stdout
    schedule = tmp_path / "printed.yaml"
    schedule.write_text(r.stdout)
    assert abs(flops_saving(schedule) - 0.25) < 0.005


def test_an_impossible_target_is_one_error_line_and_writes_nothing(tmp_path):
    out = tmp_path / "solved.yaml"
    for args, says in ((["--saving", "0.9"], "at most"), (["--saving", "0.05"], "smaller --stage1"),
                       (["--saving", "0.3", "--p-mlp", "1.5"], "--p-mlp")):
        r = run_est("schedule", "solve", "--config", QUICKSTART, *args, "--out", out)
        assert r.returncode == 2, r.stdout + r.stderr
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("est: error: "), r.stderr
        assert says in lines[0]
        assert r.stdout == ""
        assert list(tmp_path.iterdir()) == []
