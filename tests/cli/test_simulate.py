"""est simulate: predictions from the shipped cluster files, a calibration from real traces, and bad input."""
import json
from pathlib import Path

from conftest import run_est

REPO = Path(__file__).resolve().parents[2]
H100 = REPO / "jobs" / "clusters" / "h100-ib-ndr.yaml"
QUICKSTART = REPO / "configs" / "quickstart.yaml"


def simulate_json(*args):
    r = run_est("simulate", "--config", QUICKSTART, "--json", *args, cwd=REPO)  # the schedule's path is relative
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_json_has_every_point_and_stage():
    sim = simulate_json("--cluster", H100, "--nodes", "1,2,4", "--tp", "2")
    assert sim["cluster"] == "h100-ib-ndr" and sim["mode"] == "strong"
    assert [p["nodes"] for p in sim["points"]] == [1, 2, 4]
    for p in sim["points"]:
        assert p["ranks"] == 8 * p["nodes"] and p["tp"] == 2 and p["dp"] == 4 * p["nodes"]
        assert [s["stage"] for s in p["stages"]] == [1, 2, 3]
        assert sum(s["steps"] for s in p["stages"]) == 1000
        run = sum(s["steps"] * s["step_seconds"] for s in p["stages"])
        assert abs(p["est"]["run_seconds"] - run) <= 1e-9 * run
        energy = p["est"]["run_seconds"] * 10200 * p["nodes"]
        assert abs(p["est"]["energy_joules"] - energy) <= 1e-9 * energy
        assert 0 < p["time_saving"] < 1
    # More nodes move the same global batch faster.
    rates = [p["est"]["tokens_per_second"] for p in sim["points"]]
    assert rates == sorted(rates)


def test_table_by_default():
    r = run_est("simulate", "--config", QUICKSTART, "--cluster", H100, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "saving: time" in r.stdout and "tp comm s" in r.stdout


def test_bad_cluster_file_names_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(H100.read_text().replace("memory_bandwidth:", "memory_bandwith:"))
    r = run_est("simulate", "--config", QUICKSTART, "--cluster", bad, cwd=REPO)
    assert r.returncode == 2
    assert str(bad) in r.stderr and "node.memory_bandwith: unknown key" in r.stderr


def test_calibration_from_traces_feeds_the_simulation(workspace):
    tmp, config, _ = workspace
    traces = []
    for batch in (1, 16):
        out = tmp / f"run{batch}"
        r = run_est("train", "--config", config, "--set", f"train.batch_size={batch}", "--set", "train.steps=12",
                    "--set", "model.n_embd=128", "--set", "model.seq_len=64",
                    "--set", f"est.schedule={REPO / 'schedules' / 'gpt2-est.yaml'}", "--set", f"output.dir={out}")
        assert r.returncode == 0, r.stderr
        traces.append(out / "trace.h5")
    cluster = tmp / "fitted.yaml"
    r = run_est("simulate", "--calibrate", *traces, "--out", cluster, "--name", "here")
    assert r.returncode == 0, r.stderr
    text = cluster.read_text()
    assert str(traces[0]) in text  # the comments say what it was fitted to
    sim = json.loads(run_est("simulate", "--config", config, "--cluster", cluster, "--json").stdout)
    assert sim["cluster"] == "here"
    assert sim["points"][0]["stages"][0]["step_seconds"] > 0


def test_calibration_errors_write_nothing(workspace):
    tmp, config, _ = workspace
    out = tmp / "fitted.yaml"
    r = run_est("simulate", "--calibrate", tmp / "absent.h5", "--out", out)
    assert r.returncode == 2 and "absent.h5: file: no such file" in r.stderr
    assert not out.exists()
    r = run_est("simulate", "--calibrate", config, "--out", out)
    assert r.returncode == 2 and "not an HDF5 file" in r.stderr
    assert not out.exists()


def test_ranks_sharing_cores_compute_slower_and_gpu_ranks_do_not():
    local = REPO / "jobs" / "clusters" / "local-2core.yaml"
    stages = {}
    for ranks in (2, 4):
        sim = simulate_json("--cluster", local, "--ranks-per-node", str(ranks), "--tp", "2",
                            "--set", "runtime.threads=1")
        stages[ranks] = sim["points"][0]["stages"]
    assert [s["oversubscription"] for s in stages[2]] == [1, 1, 1]
    assert [s["oversubscription"] for s in stages[4]] == [2, 2, 2]  # 4 ranks x 1 thread on node.cores 2
    # runtime.threads 0 (one per core) on the DGX: its ranks compute on their GPUs (node.cores .inf).
    sim = simulate_json("--cluster", H100, "--set", "runtime.threads=0")
    assert all(s["oversubscription"] == 1 for s in sim["points"][0]["stages"])
