"""EST from the command line: `est flops`, training with a schedule, the benchmark's stages, bad schedules."""
import json
import re
from pathlib import Path

from conftest import run_est

ROOT = Path(__file__).resolve().parents[2]
GPT2_EST = ROOT / "schedules" / "gpt2-est.yaml"
TINYLLAMA_EST = ROOT / "schedules" / "tinyllama-est.yaml"


def documented_saving(schedule=GPT2_EST, model="gpt2_124m"):
    text = schedule.read_text()
    return float(re.search(rf"^# expected_saving_{model}: ([0-9.]+)$", text, re.M).group(1))


def test_flops_on_gpt2_124m_matches_the_documented_saving():
    r = run_est("flops", "--config", ROOT / "configs" / "gpt2-124m.yaml", "--set", f"est.schedule={GPT2_EST}",
                "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert abs(j["saving"] - documented_saving()) < 0.01
    assert [s["stage"] for s in j["stages"]] == [1, 2, 3]
    assert j["stages"][2]["ratio"] == 1.0
    assert abs(sum(s["flops"] for s in j["stages"]) - j["flops"]) < 1e-9 * j["flops"]
    assert abs(1 - j["flops"] / j["flops_full"] - j["saving"]) < 1e-12


def test_flops_on_tinyllama_matches_the_documented_saving():
    r = run_est("flops", "--config", ROOT / "configs" / "tinyllama-1.1b.yaml", "--set", f"est.schedule={TINYLLAMA_EST}",
                "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["schedule"].endswith("tinyllama-est.yaml")
    assert abs(j["saving"] - documented_saving(TINYLLAMA_EST, "tinyllama_1_1b")) < 0.01
    assert abs(j["saving"] - 0.25) < 0.005


def test_flops_table_is_readable():
    r = run_est("flops", "--config", ROOT / "configs" / "gpt2-124m.yaml", "--set", f"est.schedule={GPT2_EST}")
    assert r.returncode == 0, r.stderr
    assert "saving 27.0%" in r.stdout
    assert "convention:" in r.stdout


def test_training_with_a_schedule_reports_its_saving(workspace):
    tmp, config, _ = workspace
    r = run_est("train", "--config", config, "--set", f"est.schedule={GPT2_EST}", "--set", "train.steps=10")
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp / "out" / "summary.json").read_text())
    f = json.loads(run_est("flops", "--config", config, "--set", f"est.schedule={GPT2_EST}", "--set", "train.steps=10",
                           "--json").stdout)
    assert s["flops"] == f["flops"]
    assert s["flops_full_equivalent"] == f["flops_full"]
    assert abs(s["flops_saving"] - f["saving"]) < 1e-12
    assert s["flops_saving"] > 0.2
    assert s["time_saving_estimate"] is not None
    assert [st["steps"] for st in s["stages"]] == [2, 5, 3]  # stage ends 0.2, 0.66, 1.0 of 10 steps
    assert "stage 1" in r.stdout


def test_bench_times_every_stage_against_the_full_model(workspace):
    _, config, _ = workspace
    r = run_est("bench", "--config", config, "--steps", "2", "--set", f"est.schedule={GPT2_EST}")
    assert r.returncode == 0, r.stderr
    stages = json.loads(r.stdout)["stages"]
    assert [s["stage"] for s in stages] == [1, 2, 3]
    assert stages[0]["flops_ratio"] < stages[1]["flops_ratio"] < stages[2]["flops_ratio"] == 1.0
    assert stages[2]["time_ratio"] == 1.0


def test_bad_schedule_is_one_clear_error(workspace):
    tmp, config, _ = workspace
    bad = tmp / "bad.yaml"
    bad.write_text("stages:\n  - until: 0.5\n    p_heads: 1.5\n  - until: 1.0\n")
    r = run_est("train", "--config", config, "--set", f"est.schedule={bad}")
    assert r.returncode == 2
    assert "bad.yaml" in r.stderr and "stages[0].p_heads" in r.stderr
    assert not (tmp / "out").exists()


def test_schedule_that_rounds_to_zero_heads_is_rejected(workspace):
    tmp, config, _ = workspace
    bad = tmp / "rounds.yaml"
    bad.write_text("stages:\n  - until: 0.5\n    p_heads: 0.2\n  - until: 1.0\n")  # round(0.2 * 2 heads) = 0
    r = run_est("train", "--config", config, "--set", f"est.schedule={bad}")
    assert r.returncode == 2, r.stderr
    assert "stages[0].p_heads" in r.stderr
    assert not (tmp / "out").exists()


def test_last_stage_not_full_is_a_warning(workspace):
    tmp, config, _ = workspace
    partial = tmp / "partial.yaml"
    partial.write_text("stages:\n  - until: 1.0\n    p_mlp: 0.5\n")
    r = run_est("train", "--config", config, "--set", f"est.schedule={partial}", "--set", "train.steps=2")
    assert r.returncode == 0, r.stderr
    assert "warning" in r.stderr and "full model" in r.stderr
