"""Parallel runs from the command line under mpirun: one rank's failure ends the whole job, bad input is one
error line with exit status 2 whatever the rank count, and the summary reports the grid and the traffic."""
import json
import os
import subprocess

from conftest import EST, write_shard

MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-x", "OMP_NUM_THREADS=1"]


def mpirun(np, *args, timeout=300):
    return subprocess.run([*MPIRUN, "-np", str(np), EST, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_a_failing_rank_ends_the_job_instead_of_hanging(workspace):
    tmp, config, _ = workspace
    # Global batches of 2 x 16 tokens (+1): a token outside the vocabulary only in rank 1's half of the second.
    tokens = [65] * 4000
    tokens[32 + 16 + 5] = 300
    bad = tmp / "rank1_train_000000.bin"
    write_shard(bad, tokens)
    r = mpirun(2, "train", "--config", config, "--set", f"data.train={bad}", "--set", "data.shuffle=false",
               "--set", "train.steps=5", timeout=120)
    assert r.returncode != 0
    errors = [line for line in r.stderr.splitlines() if line.startswith("est: error:")]
    assert len(errors) == 1, r.stderr
    assert str(bad) in errors[0] and "token" in errors[0] and "300" in errors[0]


def test_bad_input_under_mpirun_is_one_error_and_status_2(workspace):
    tmp, config, _ = workspace
    r = mpirun(2, "train", "--config", config, "--set", "train.stepz=3")
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("est: error:")]
    assert len(errors) == 1, r.stderr
    assert "train.stepz" in errors[0]
    assert not (tmp / "out").exists()


def test_tensor_parallel_size_must_divide_the_ranks(workspace):
    tmp, config, _ = workspace
    r = mpirun(2, "train", "--config", config, "--set", "parallel.tp=4")
    assert r.returncode == 2
    assert "parallel.tp" in r.stderr


def test_summary_reports_grid_imbalance_and_traffic(workspace):
    tmp, config, _ = workspace
    r = mpirun(2, "train", "--config", config, "--set", "parallel.tp=2")
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp / "out" / "summary.json").read_text())
    assert s["grid"] == {"ranks": 2, "tp": 2, "dp": 1}
    assert len(s["per_rank"]) == 2
    assert s["imbalance"]["mean"] >= 1.0
    comm = s["communication"]
    assert comm["tp_bytes_per_step"] > 0
    assert 0 < comm["dp_gradient_bytes_per_step"] <= comm["dp_gradient_bytes_full_model"]
    assert "imbalance" in r.stdout and "MB" in r.stdout


def test_data_parallel_gradient_sums_are_overlapped_and_traced(workspace):
    import h5py

    tmp, config, _ = workspace
    r = mpirun(2, "train", "--config", config, "--set", "parallel.bucket_mb=0.01")
    assert r.returncode == 0, r.stderr
    assert "gradient sums in buckets of 0.01 MiB, overlapped with the backward pass" in r.stdout
    s = json.loads((tmp / "out" / "summary.json").read_text())
    assert s["communication"]["dp_overlap"] is True
    for rank in s["per_rank"]:
        assert rank["dp_reduce_seconds_per_step"] > 0
        assert 0 <= rank["dp_exposed_seconds_per_step"] <= rank["comm_seconds_per_step"]
    with h5py.File(tmp / "out" / "trace.h5", "r") as f:
        assert f.attrs["format_version"] == 2
        reduce, exposed, comm = (f[k][...] for k in ("dp_reduce_seconds", "dp_exposed_seconds", "comm_seconds"))
    assert reduce.shape == exposed.shape == comm.shape == (6, 2)
    assert (reduce > 0).all() and (exposed >= 0).all() and (comm >= exposed).all()


def test_bench_times_each_stage_with_the_gradient_sum_overlapped_and_blocking(workspace):
    tmp, config, _ = workspace
    schedule = tmp / "two.yaml"
    schedule.write_text("stages:\n  - {until: 0.5, p_heads: 0.5, p_mlp: 0.5, p_layers: 0.5}\n  - {until: 1.0}\n")
    r = mpirun(2, "bench", "--config", config, "--steps", "2", "--set", f"est.schedule={schedule}")
    assert r.returncode == 0, r.stderr
    bench = json.loads(r.stdout[r.stdout.index("{"):])
    dp = bench["data_parallel"]
    assert dp["overlap_available"] is True
    assert [row["stage"] for row in dp["stages"]] == [1, 2]
    for row in dp["stages"]:
        for mode in ("overlapped", "blocking"):
            assert row[mode]["dp_reduce_seconds"] > 0 and row[mode]["tokens_per_second"] > 0
        assert row["step_ratio"] == row["overlapped"]["step_seconds"] / row["blocking"]["step_seconds"]
    assert bench["gradient_reduction"] == {"bucket_mb": 100.0, "overlap": True}
