"""`est study`: every point of a study runs once, a killed study resumes without re-running finished points, the
manifest lists every run, and bad input runs nothing."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import h5py
import pytest

from conftest import EST, run_est

ROOT = Path(__file__).resolve().parents[2]
SCHEDULES = ROOT / "schedules"


def write_spec(ws, config, seeds=(1, 2), variants=None, extra=""):
    variants = variants or [
        {"name": "full", "schedule": str(SCHEDULES / "full.yaml")},
        {"name": "est", "schedule": str(SCHEDULES / "gpt2-est.yaml"), "set": ["train.lr_schedule=wsd"]},
    ]
    spec = ws / "study.yaml"
    spec.write_text(json.dumps({"config": config.name, "seeds": list(seeds), "variants": variants}) + extra)
    return spec


def manifest(out):
    return json.loads((out / "manifest.json").read_text())


def steps_in(trace):
    with h5py.File(trace, "r") as f:
        return list(f["step"][:])


def test_every_point_runs_once_with_its_seed_and_the_manifest_lists_them(workspace):
    ws, config, _ = workspace
    out = ws / "study"
    r = run_est("study", write_spec(ws, config), "--out", out)
    assert r.returncode == 0, r.stderr
    m = manifest(out)
    assert [p["name"] for p in m["points"]] == ["full-s1", "full-s2", "est-s1", "est-s2"]
    assert [v["name"] for v in m["variants"]] == ["full", "est"] and m["baseline"] == "full"
    assert m["variants"][1]["saving"] > 0.2
    losses = set()
    for p in m["points"]:
        assert p["status"] == "done" and p["exit_status"] is None
        assert steps_in(out / p["trace"]) == list(range(1, 7))
        summary = json.loads((out / p["summary"]).read_text())
        losses.add(summary["final_train_loss"])
        assert f"train.seed={p['seed']}" in p["overrides"]
    assert len(losses) == 4  # each seed and schedule trained its own model

    before = {p["name"]: (out / p["trace"]).stat().st_mtime_ns for p in m["points"]}
    again = run_est("study", ws / "study.yaml", "--out", out)
    assert again.returncode == 0, again.stderr
    assert "0 done now, 4 done before" in again.stdout
    assert {p["name"]: (out / p["trace"]).stat().st_mtime_ns for p in m["points"]} == before


def test_a_compute_matched_variant_spends_the_baselines_flops(workspace):
    ws, config, _ = workspace
    out = ws / "study"
    variants = [{"name": "full", "schedule": str(SCHEDULES / "full.yaml")},
                {"name": "matched", "schedule": str(SCHEDULES / "gpt2-est.yaml"), "compute_matched": True}]
    spec = write_spec(ws, config, seeds=[3], variants=variants)
    r = run_est("study", spec, "--out", out, "--set", "train.steps=40")
    assert r.returncode == 0, r.stderr
    full, matched = (json.loads((out / p["summary"]).read_text()) for p in manifest(out)["points"])
    assert full["steps"] == 40 and matched["steps"] > 50
    assert matched["flops"] == pytest.approx(full["flops"], rel=0.02)


def running_children(out):
    """PIDs of processes training in OUT (the study's points)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if proc.name.isdigit() and any(a.startswith(f"output.dir={out}".encode()) for a in cmdline):
            pids.append(int(proc.name))
    return pids


def test_a_killed_study_resumes_without_rerunning_finished_points(workspace):
    ws, config, _ = workspace
    out = ws / "study"
    spec = write_spec(ws, config, seeds=[1, 2, 3], variants=[{"name": "full", "schedule": str(SCHEDULES / "full.yaml")}])
    args = ["--out", out, "--set", "train.steps=400", "--set", "train.eval_every=0"]
    study = subprocess.Popen([EST, "study", spec, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while True:
        assert time.monotonic() < deadline and study.poll() is None, "the study ended before it could be killed"
        statuses = [p["status"] for p in manifest(out)["points"]] if (out / "manifest.json").exists() else []
        if statuses[:2] == ["done", "running"] and (out / "full-s2" / "trace.h5").exists():
            break
        time.sleep(0.05)
    study.kill()  # SIGKILL: no chance to tidy up; its point is told to stop by the kernel (SIGTERM on parent death)
    study.wait()
    while running_children(out):
        time.sleep(0.05)
    finished = (out / "full-s1" / "trace.h5").stat().st_mtime_ns

    r = run_est("study", spec, *args)
    assert r.returncode == 0, r.stderr
    assert "2 done now, 1 done before" in r.stdout
    assert (out / "full-s1" / "trace.h5").stat().st_mtime_ns == finished
    m = manifest(out)
    assert [p["status"] for p in m["points"]] == ["done"] * 3
    log = (out / "full-s2.log").read_text()
    assert "with a checkpoint" in log and "resuming from" in log, log
    for p in m["points"]:
        assert steps_in(out / p["trace"]) == list(range(1, 401))


@pytest.mark.parametrize("change, file_key", [
    (lambda v: v[1].update(schedule="absent.yaml"), "absent.yaml"),
    (lambda v: v[1].update(set=["train.lr_schedule=linear"]), "train.lr_schedule"),
    (lambda v: v[1].update(set=["train.stepz=4"]), "train.stepz"),
    (lambda v: v[1].update(colour="red"), "variants[1].colour"),
    (lambda v: v[1].update(name="full"), "repeats variant 'full'"),
    (lambda v: v[0].update(compute_matched=True), "baseline cannot be compute-matched"),
])
def test_bad_variants_are_one_error_and_nothing_runs(workspace, change, file_key):
    ws, config, _ = workspace
    variants = [{"name": "full", "schedule": str(SCHEDULES / "full.yaml")},
                {"name": "est", "schedule": str(SCHEDULES / "gpt2-est.yaml")}]
    change(variants)
    r = run_est("study", write_spec(ws, config, variants=variants), "--out", ws / "study", cwd=ws)
    assert r.returncode == 2, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("est: error:") and file_key in lines[0], r.stderr
    assert not (ws / "study").exists()


def test_bad_spec_keys_and_overrides_are_refused(workspace):
    ws, config, _ = workspace
    for extra_args, spec_kwargs, needle in [
        (["--set", "train.steps=0"], {}, "train.steps"),
        ([], {"seeds": [1, 1]}, "seeds[1]"),
        ([], {"seeds": []}, "seeds"),
    ]:
        r = run_est("study", write_spec(ws, config, **spec_kwargs), "--out", ws / "study", *extra_args)
        assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    spec = write_spec(ws, config)
    spec.write_text(spec.read_text().replace('"seeds"', '"baseline": "nope", "seeds"'))
    r = run_est("study", spec, "--out", ws / "study")
    assert r.returncode == 2 and "'nope' is not a variant" in r.stderr
    assert not (ws / "study").exists()


def test_a_different_study_in_the_directory_is_kept_unless_forced(workspace):
    ws, config, _ = workspace
    out = ws / "study"
    one = [{"name": "full", "schedule": str(SCHEDULES / "full.yaml")}]
    assert run_est("study", write_spec(ws, config, seeds=[1], variants=one), "--out", out).returncode == 0
    r = run_est("study", write_spec(ws, config, seeds=[2], variants=one), "--out", out)
    assert r.returncode == 2 and "holds a different study" in r.stderr and "--force" in r.stderr
    assert [p["name"] for p in manifest(out)["points"]] == ["full-s1"]
    r = run_est("study", ws / "study.yaml", "--out", out, "--force")
    assert r.returncode == 0, r.stderr
    assert [p["name"] for p in manifest(out)["points"]] == ["full-s2"] and not (out / "full-s1").exists()
    (ws / "other").mkdir()
    (ws / "other" / "keep.txt").write_text("mine")
    r = run_est("study", ws / "study.yaml", "--out", ws / "other")
    assert r.returncode == 2 and "not an empty directory" in r.stderr


def test_slurm_writes_one_array_of_the_points_through_jobs_launch(workspace):
    ws, config, _ = workspace
    out = ws / "study"
    r = run_est("study", write_spec(ws, config), "--out", out, "--slurm", "--time", "00:10:00", cwd=ws)
    assert r.returncode == 0, r.stderr
    script = (out / "study.sbatch").read_text()
    assert "#SBATCH --array=0-3" in script and "#SBATCH --time=00:10:00" in script
    assert f"exec {ROOT / 'jobs' / 'launch'}" in script
    for i, p in enumerate(manifest(out)["points"]):
        assert f"  {i}) point={p['name']};" in script and p["status"] == "pending"
    assert subprocess.run(["bash", "-n", out / "study.sbatch"]).returncode == 0
    assert not (out / "full-s1").exists()
    r = run_est("study", ws / "study.yaml", "--out", out, "--slurm", "--time", "ten minutes", cwd=ws)
    assert r.returncode == 2 and "--time" in r.stderr
