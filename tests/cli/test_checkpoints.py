"""Checkpoints and traces end to end: a crash mid-write leaves the last checkpoint usable, corruption is caught,
--resume auto falls back, a diverged run keeps its last good checkpoint, and a reader follows a running trace."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

from conftest import EST, run_est


def checkpoints(out):
    return sorted((out / "checkpoints").glob("ckpt_*.h5"))


def start_training(config, *sets):
    args = [EST, "train", "--config", str(config)]
    for s in sets:
        args += ["--set", s]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_while_writing_leaves_the_previous_checkpoint_and_auto_resume_continues(workspace):
    tmp, config, _ = workspace
    out = tmp / "out"
    # A model of ~13M parameters makes each checkpoint ~150 MB: long enough to be caught mid-write.
    proc = start_training(config, "model.n_layer=4", "model.n_embd=512", "model.n_head=4", "train.steps=100000",
                          "output.checkpoint_every=2", "output.keep=5", "data.val=")
    try:
        deadline = time.time() + 240
        killed_mid_write = False
        while time.time() < deadline and not killed_mid_write:
            done = checkpoints(out)
            partial = list((out / "checkpoints").glob("*.tmp")) if (out / "checkpoints").exists() else []
            if done and partial:
                proc.send_signal(signal.SIGKILL)
                killed_mid_write = True
            time.sleep(0.005)
        assert killed_mid_write, "never saw a checkpoint being written"
    finally:
        proc.kill()
        proc.wait()
    # No partial file under a checkpoint's name: every one verifies.
    for ckpt in checkpoints(out):
        r = run_est("inspect", ckpt, "--verify")
        assert r.returncode == 0, (ckpt, r.stdout, r.stderr)
    newest = checkpoints(out)[-1]
    r = run_est("train", "--config", config, "--set", "model.n_layer=4", "--set", "model.n_embd=512",
                "--set", "model.n_head=4", "--set", "train.steps=100000", "--set", "data.val=",
                "--set", "train.stop_after=1", "--resume", "auto")
    assert r.returncode == 0, r.stderr
    assert f"resuming from {newest}" in r.stdout


def corrupt(path, dataset="/params/qkvw"):
    with h5py.File(path, "r") as f:
        offset = f[dataset].id.get_offset()
    with open(path, "r+b") as f:
        f.seek(offset + 101)
        byte = f.read(1)
        f.seek(offset + 101)
        f.write(bytes([byte[0] ^ 0x40]))


def test_a_flipped_byte_is_detected_and_auto_resume_falls_back(workspace):
    tmp, config, _ = workspace
    out = tmp / "out"
    r = run_est("train", "--config", config, "--set", "output.checkpoint_every=2", "--set", "train.stop_after=4")
    assert r.returncode == 0, r.stderr
    older, newest = checkpoints(out)
    corrupt(newest)
    r = run_est("inspect", newest, "--verify")
    assert r.returncode == 1 and "/params/qkvw" in r.stdout + r.stderr
    r = run_est("train", "--config", config, "--resume", str(newest))
    assert r.returncode == 2
    assert str(newest) in r.stderr and "checksum" in r.stderr
    r = run_est("train", "--config", config, "--resume", "auto", "--set", "train.stop_after=1")
    assert r.returncode == 0, r.stderr
    assert "warning" in r.stderr and str(newest) in r.stderr
    assert f"resuming from {older}" in r.stdout


def test_a_diverged_run_stops_with_an_error_and_keeps_its_last_checkpoint(workspace):
    tmp, config, _ = workspace
    out = tmp / "out"
    r = run_est("train", "--config", config, "--set", "output.checkpoint_every=1", "--set", "train.lr=1e12",
                "--set", "train.grad_clip=0", "--set", "train.steps=50")
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("est: error:")]
    assert len(errors) == 1 and "not finite" in errors[0]
    assert checkpoints(out), "the steps before it were checkpointed"
    for ckpt in checkpoints(out):
        assert run_est("inspect", ckpt, "--verify").returncode == 0


def test_bad_checkpoint_files_are_one_clear_error(workspace):
    tmp, config, _ = workspace
    text = tmp / "notes.h5"
    text.write_text("not HDF5")
    for bad in (text, tmp / "missing.h5"):
        r = run_est("train", "--config", config, "--resume", bad)
        assert r.returncode == 2
        assert str(bad) in r.stderr
        r = run_est("inspect", bad)
        assert r.returncode == 2 and str(bad) in r.stderr
    run_est("train", "--config", config, "--set", "output.checkpoint_every=2", "--set", "train.stop_after=2")
    good = checkpoints(tmp / "out")[0]
    cut = tmp / "cut.h5"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    r = run_est("train", "--config", config, "--resume", cut)
    assert r.returncode == 2 and str(cut) in r.stderr


def open_swmr_reader(path, deadline):
    # SWMR readers retry: a resumed run holds the file locked while it reopens it for appending.
    while True:
        try:
            return h5py.File(path, "r", libver="latest", swmr=True)
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def test_a_reader_follows_the_trace_while_training_writes_it(workspace):
    tmp, config, _ = workspace
    trace = tmp / "out" / "trace.h5"
    proc = start_training(config, "train.steps=3000", "train.eval_every=1000", "train.log_every=10000")
    try:
        deadline = time.time() + 120
        while not trace.exists() and time.time() < deadline:
            time.sleep(0.05)
        seen = []
        with open_swmr_reader(trace, deadline) as f:
            steps = f["step"]
            while len(seen) < 2 and time.time() < deadline and proc.poll() is None:
                steps.refresh()
                if steps.shape[0] and (not seen or steps.shape[0] > seen[-1]):
                    seen.append(steps.shape[0])
                time.sleep(0.1)
            # Both reads happened while the run was writing (the loop stops when it ends).
            assert len(seen) == 2 and seen[1] > seen[0], seen
            assert list(steps[: seen[0]]) == list(range(1, seen[0] + 1))
    finally:
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    with h5py.File(trace, "r") as f:
        assert f["step"].shape[0] == 3000
        assert f.attrs["est_kind"] in ("trace", b"trace")
        assert f["loss"].shape[0] == 3000
        val = f["val_loss"][:]
        assert sum(1 for v in val if v == v) == 3  # validations at 1000, 2000, 3000; NaN elsewhere


def test_inspect_summarises_a_trace_and_a_checkpoint(workspace):
    tmp, config, _ = workspace
    r = run_est("train", "--config", config, "--set", "output.checkpoint_every=3")
    assert r.returncode == 0, r.stderr
    r = run_est("inspect", tmp / "out" / "trace.h5", "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["rows"] == 6
    r = run_est("inspect", checkpoints(tmp / "out")[-1], "--verify", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["step"] == 6
    # h5dump reads both without est.
    for f in (tmp / "out" / "trace.h5", checkpoints(tmp / "out")[-1]):
        assert subprocess.run(["h5dump", "-H", str(f)], capture_output=True).returncode == 0


def test_a_resumed_run_keeps_the_checkpoints_strata_and_continues_its_draws_exactly(workspace):
    tmp, config, _ = workspace
    schedule = Path(__file__).resolve().parents[2] / "schedules" / "gpt2-est.yaml"
    est = ["--set", f"est.schedule={schedule}", "--set", "output.save_model=true"]
    straight = run_est("train", "--config", config, *est, "--set", "est.strata=1", "--set", f"output.dir={tmp}/a")
    assert straight.returncode == 0, straight.stderr
    first = run_est("train", "--config", config, *est, "--set", "est.strata=1", "--set", "train.stop_after=3",
                    "--set", f"output.dir={tmp}/b")
    assert first.returncode == 0, first.stderr
    with h5py.File(checkpoints(tmp / "b")[-1], "r") as f:
        assert int(f.attrs["est_strata"]) == 1
    # The config's default for 2 heads is 2 strata: the resumed run keeps the checkpoint's 1.
    resumed = run_est("train", "--config", config, *est, "--set", f"output.dir={tmp}/b", "--resume", "auto")
    assert resumed.returncode == 0, resumed.stderr
    assert "keeping the checkpoint's 1 strata for the draws (the config gives 2)" in resumed.stdout
    assert (tmp / "b" / "model.bin").read_bytes() == (tmp / "a" / "model.bin").read_bytes()
