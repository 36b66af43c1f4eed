"""est under a real Slurm: a two-node cluster on this machine (tests/slurm/local-slurm), a scaling study written by
`est jobs scaling` and submitted with jobs/submit-study, a job that hits its time limit, checkpoints, requeues itself
and resumes to the same model as an uninterrupted run, and the mpirun launcher."""
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import h5py
import pytest

REPO = Path(__file__).resolve().parents[2]
EST = os.environ.get("EST_BIN", str(REPO / "build" / "bin" / "est"))
LOCAL_SLURM = REPO / "tests" / "slurm" / "local-slurm"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}

TINY_CONFIG = """\
model: {{n_layer: 2, n_head: 2, n_embd: 32, seq_len: 16, vocab_size: 256}}
data: {{train: data/text_train_*.bin, val: data/text_val_*.bin}}
train: {{batch_size: 4, steps: {steps}, lr: 1.0e-3, warmup: 2, eval_batches: 2}}
runtime: {{threads: 1}}
"""


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """A started local Slurm, always stopped at the end; yields the environment for its clients and jobs."""
    if not shutil.which("slurmctld") or not shutil.which("munged"):
        pytest.skip("slurm-wlm and munge are not installed")
    state = tmp_path_factory.mktemp("slurm")
    started = subprocess.run([LOCAL_SLURM, "start", state], capture_output=True, text=True, timeout=60)
    try:
        assert started.returncode == 0, started.stderr
        env = dict(os.environ, SLURM_CONF=str(state / "slurm.conf"), EST_BIN=EST, EST_JOBS_DIR=str(REPO / "jobs"),
                   OMP_NUM_THREADS="1",
                   # The two nodes share one host: Open MPI's shared-memory transport would mix the segments of
                   # ranks on different nodes, so the ranks talk TCP as on a real cluster.
                   OMPI_MCA_btl="self,tcp")
        yield env
    finally:
        subprocess.run([LOCAL_SLURM, "stop", state], timeout=60)


@pytest.fixture
def workspace(tmp_path, cluster):
    """A byte-level corpus under tmp_path/data and a tiny config (relative data paths: jobs run in tmp_path)."""
    text = tmp_path / "text.txt"
    text.write_bytes(("In the beginning God created the heaven and the earth. " * 4000).encode())
    r = subprocess.run([EST, "data", "prepare", "--text", text, "--out", tmp_path / "data", "--val-fraction", "0.1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return tmp_path


def write_config(ws, steps):
    config = ws / "tiny.yaml"
    config.write_text(TINY_CONFIG.format(steps=steps))
    return config


def sbatch(env, cwd, *args):
    r = subprocess.run(["sbatch", "--parsable", *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().split(";")[0]


def wait_for(env, jobs, timeout):
    """Waits until every job has ended for good (a requeued job is pending again, not ended); returns their states."""
    deadline = time.monotonic() + timeout
    while True:
        r = subprocess.run(["squeue", "-h", "-t", "all", "-j", ",".join(jobs), "-o", "%i %T"], env=env,
                           capture_output=True, text=True, timeout=60)
        states = dict(line.split() for line in r.stdout.splitlines())
        if len(states) == len(jobs) and set(states.values()) <= TERMINAL:
            return states
        assert time.monotonic() < deadline, f"jobs still not done after {timeout} s: {states}"
        time.sleep(1)


def job_field(env, job, field):
    r = subprocess.run(["scontrol", "show", "job", "-o", job], env=env, capture_output=True, text=True, timeout=60)
    return dict(kv.split("=", 1) for kv in r.stdout.split() if "=" in kv)[field]


def test_scaling_study_runs_every_point_on_its_grid(cluster, workspace):
    config = write_config(workspace, steps=6)
    study = workspace / "study"
    r = subprocess.run([EST, "jobs", "scaling", "--config", config, "--set", "output.checkpoint_every=3",
                        "--nodes", "1,2", "--mode", "strong", "--ranks-per-node", "2", "--tp", "2",
                        "--time", "00:05:00", "--out", study], cwd=workspace, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([REPO / "jobs" / "submit-study", study], env=cluster, cwd=workspace, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    jobs = [line.split()[0] for line in r.stdout.splitlines()]
    manifest = json.loads((study / "manifest.json").read_text())
    assert len(jobs) == len(manifest["points"]) == 2
    states = wait_for(cluster, jobs, timeout=120)

    for job, point in zip(jobs, manifest["points"]):
        log = (study / point["log"]).read_text()
        assert states[job] == "COMPLETED", log
        assert job_field(cluster, job, "NumNodes") == str(point["nodes"])
        with h5py.File(study / point["trace"], "r") as trace:
            assert list(trace["step"][:]) == list(range(1, 7))
            assert [int(trace.attrs[k]) for k in ("ranks", "tp", "dp")] == [point[k] for k in ("ranks", "tp", "dp")]
        assert (study / point["output_dir"] / "checkpoints" / "ckpt_00000006.h5").exists(), log
        summary = json.loads((study / point["output_dir"] / "summary.json").read_text())
        assert summary["tokens"] == 6 * point["global_batch"] * 16


def steps_lasting(seconds, ws, config, slowed):
    """How many steps of the slowed run take `seconds` of training on this machine, measured on CONFIG's run."""
    probe = subprocess.run([EST, "train", "--config", config, *slowed, "--set", "output.dir=probe"], cwd=ws,
                           capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    summary = json.loads((ws / "probe" / "summary.json").read_text())
    return int(summary["steps"] * seconds / summary["train_seconds"])


def test_a_job_at_its_time_limit_checkpoints_requeues_and_resumes_to_the_same_model(cluster, workspace):
    # Each step sleeps 30 times its compute time (parallel.slow_*): a run of about a minute on any machine (its
    # steps are counted from a short run's pace, which comes out slower), leaving the CPUs to the uninterrupted run
    # beside it. The one-minute limit's USR1 comes 50 s early, give or take the controller's timer (up to about 30 s
    # late), so it arrives while the run is still going; the requeued job may be stopped again the same way.
    slowed = ["--set", "parallel.slow_rank=0", "--set", "parallel.slow_factor=30"]
    config = write_config(workspace, steps=100)
    config = write_config(workspace, steps=steps_lasting(70, workspace, config, slowed))
    same = [*slowed, "--set", "train.log_every=500"]
    job = sbatch(cluster, workspace, "--time=1", "--signal=B:USR1@50", "--output=stopped.log",
                 REPO / "jobs" / "train.sbatch", config, *same, "--set", "output.dir=stopped")
    reference = subprocess.run([EST, "train", "--config", config, *same, "--set", "output.dir=reference"],
                               cwd=workspace, env=cluster, capture_output=True, text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr
    states = wait_for(cluster, [job], timeout=300)

    log = (workspace / "stopped.log").read_text()
    assert states[job] == "COMPLETED", log
    assert int(job_field(cluster, job, "Restarts")) >= 1, log
    for line in ("jobs/launch: SIGUSR1 received", "(SIGUSR1) with a checkpoint", f"requeueing job {job}",
                 "est: resuming from"):
        assert line in log
    stopped, ref = workspace / "stopped", workspace / "reference"
    assert (json.loads((stopped / "summary.json").read_text())["final_train_loss"] ==
            json.loads((ref / "summary.json").read_text())["final_train_loss"])
    assert (stopped / "model.bin").read_bytes() == (ref / "model.bin").read_bytes()


def test_mpirun_launcher_runs_two_ranks_on_two_nodes(cluster, workspace):
    config = write_config(workspace, steps=6)
    env = dict(cluster, EST_LAUNCHER="mpirun")
    job = sbatch(env, workspace, "--nodes=2", "--ntasks-per-node=1", "--output=mpirun.log",
                 REPO / "jobs" / "train.sbatch", config, "--set", "output.dir=out")
    states = wait_for(cluster, [job], timeout=120)
    log = (workspace / "mpirun.log").read_text()
    assert states[job] == "COMPLETED", log
    assert "2 ranks" in log
    with h5py.File(workspace / "out" / "trace.h5", "r") as trace:
        assert int(trace.attrs["ranks"]) == 2 and len(trace["step"]) == 6


def test_a_daemon_that_fails_to_start_is_reported_with_its_own_error(tmp_path):
    """slurmd refusing to start (as on a machine without cgroups) writes its reason to its log only: local-slurm
    prints it, stops the daemons it had started and exits 1."""
    if not shutil.which("slurmctld") or not shutil.which("munged"):
        pytest.skip("slurm-wlm and munge are not installed")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "slurmd").write_text(
        "#!/bin/bash\n"
        "# slurmd -f CONF -N NODE, failing as slurmd does without cgroups: the reason in its log, nothing on stderr\n"
        'echo "[2026-12-01T00:00:00] error: No filesystem mounted on /sys/fs/cgroup" '
        '>"$(dirname "$2")/log/slurmd-$4.log"\n'
        "exit 1\n")
    (fake / "slurmd").chmod(0o755)
    state = tmp_path / "slurm"
    env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}")
    r = subprocess.run([LOCAL_SLURM, "start", state], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1
    assert "slurmd n1 did not start (exit 1)" in r.stderr
    assert "No filesystem mounted on /sys/fs/cgroup" in r.stderr
    # munged and slurmctld, started before it, are stopped again.
    assert not (state / "slurmctld.pid").exists() and not (state / "munge" / "munged.pid").exists()


def test_a_study_runs_as_one_array_and_a_resubmission_runs_only_what_is_left(cluster, workspace):
    config = write_config(workspace, steps=6)
    spec = workspace / "study.yaml"
    spec.write_text(json.dumps({"config": config.name, "seeds": [1, 2], "variants": [
        {"name": "full", "schedule": str(REPO / "schedules" / "full.yaml")},
        {"name": "est", "schedule": str(REPO / "schedules" / "gpt2-est.yaml")}]}))
    study = workspace / "study"
    r = subprocess.run([EST, "study", spec, "--out", study, "--slurm", "--time", "00:05:00"], cwd=workspace,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr

    def submit():
        r = subprocess.run([REPO / "jobs" / "submit-study", study], env=cluster, cwd=workspace, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        [line] = r.stdout.splitlines()  # one array job
        job = line.split()[0]
        deadline = time.monotonic() + 180
        while subprocess.run(["squeue", "-h", "-j", job], env=cluster, capture_output=True, text=True,
                             timeout=60).stdout.strip():
            assert time.monotonic() < deadline, f"array {job} still running"
            time.sleep(1)

    submit()
    points = json.loads((study / "manifest.json").read_text())["points"]
    assert len(points) == 4
    for p in points:
        log = (study / p["log"]).read_text()
        with h5py.File(study / p["trace"], "r") as trace:
            assert list(trace["step"][:]) == list(range(1, 7)), log
    finished = {p["name"]: (study / p["trace"]).stat().st_mtime_ns for p in points}
    shutil.rmtree(study / "est-s2")
    submit()
    assert (study / "est-s2" / "summary.json").exists()
    assert all((study / p["trace"]).stat().st_mtime_ns == finished[p["name"]] for p in points if p["name"] != "est-s2")
