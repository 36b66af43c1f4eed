"""The host-side steps of scripts/gpu-check on real CPU runs: the per-step loss comparison (its tolerance, a
step that differs, runs of another length), the bench table, and a run without a packed bundle. (Packing the CUDA
build is checked by scripts/test after scripts/build-cuda.)"""
import json
import subprocess
import sys
from pathlib import Path

from conftest import run_est

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu_check.py"


def train(config, out, *sets):
    r = run_est("train", "--config", config, "--set", f"output.dir={out}", *sets)
    assert r.returncode == 0, r.stderr
    return out / "trace.h5"


def gpu_check(*args):
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_the_same_run_twice_compares_equal_and_a_changed_step_fails(workspace):
    tmp, config, _ = workspace
    first, second = train(config, tmp / "a"), train(config, tmp / "b")
    r = gpu_check("losses", first)
    assert r.returncode == 0, r.stderr
    losses = json.loads(r.stdout)
    assert len(losses) == 6 and all(x > 0 for x in losses)
    (tmp / "cpu.json").write_text(json.dumps(losses))
    r = gpu_check("compare", tmp / "cpu.json", second)
    assert r.returncode == 0 and "PASS" in r.stdout and "0.00e+00 over 6 steps" in r.stdout

    # One step 2e-4 off: outside the default tolerance, inside a looser one.
    changed = list(losses)
    changed[3] *= 1 + 2e-4
    (tmp / "changed.json").write_text(json.dumps(changed))
    r = gpu_check("compare", tmp / "changed.json", second)
    assert r.returncode == 1 and "FAIL" in r.stdout
    assert f"| 4 | {changed[3]:.6f} | {losses[3]:.6f} |" in r.stdout
    assert gpu_check("compare", tmp / "changed.json", second, "--rtol", "1e-3").returncode == 0

    (tmp / "short.json").write_text(json.dumps(losses[:5]))
    r = gpu_check("compare", tmp / "short.json", second)
    assert r.returncode == 1 and "5 steps | 6 steps" in r.stdout


def test_the_bench_table_has_every_stage_and_the_full_model(workspace):
    tmp, config, _ = workspace
    r = run_est("bench", "--config", config, "--steps", "1", "--set",
                f"est.schedule={REPO / 'schedules' / 'gpt2-est.yaml'}")
    assert r.returncode == 0, r.stderr
    bench = json.loads(r.stdout)
    lines = gpu_check_bench(tmp, bench)
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| stage")]
    assert [row.split(" | ")[0] for row in rows] == ["| 1", "| 2", "| 3 (full)"]
    tokens = bench["tokens_per_second"] * bench["step_seconds"]
    for row, stage in zip(rows, bench["stages"]):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[4]) == round(stage["step_seconds"], 4)
        assert int(cells[7]) == round(tokens / stage["step_seconds"])
    assert bench["kokkos"] in lines[0] and f"GEMM {bench['gemm_backend']} {bench['precision']}" in lines[0]


def test_benches_at_several_precisions_are_compared_with_the_first(workspace):
    tmp, config, _ = workspace
    benches = []
    for precision in ("fp32", "tf32"):
        r = run_est("bench", "--config", config, "--steps", "1", "--set", f"runtime.precision={precision}")
        assert r.returncode == 0, r.stderr
        benches.append(json.loads(r.stdout))
    lines = gpu_check_bench(tmp, *benches)
    assert sum(line.startswith("est bench:") for line in lines) == 2
    at = lines.index("| precision | tokens/s | step (s) | GEMM GFLOP/s | tokens/s against fp32 |")
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[at + 2:at + 4]]
    assert [row[0] for row in rows] == ["fp32", "tf32"]
    assert rows[0][4] == "1.00"
    assert float(rows[1][4]) == round(benches[1]["tokens_per_second"] / benches[0]["tokens_per_second"], 2)


def gpu_check_bench(tmp, *benches):
    paths = []
    for i, bench in enumerate(benches):
        paths.append(tmp / f"bench-{i}.json")
        paths[-1].write_text(json.dumps(bench))
    r = gpu_check("bench", *paths)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_run_without_a_packed_bundle_says_so(tmp_path):
    r = subprocess.run([REPO / "scripts" / "gpu-check", "run", tmp_path / "none"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2
    assert "holds no packed binaries" in r.stderr
