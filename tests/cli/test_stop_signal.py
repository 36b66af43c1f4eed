"""A signal (what Slurm's --signal sends before the time limit) stops training at the next step boundary with a
checkpoint and exit status 75; --resume auto then finishes the run exactly as if it had never stopped."""
import json
import signal
import subprocess
import time

import pytest

from conftest import EST, run_est

STEPS = 10000  # long enough to be caught mid-run (the tiny model takes well under a millisecond a step alone)
EXIT_RESUMABLE = 75


def train_args(config, *extra):
    return [EST, "train", "--config", str(config), "--set", f"train.steps={STEPS}", "--set", "train.eval_every=0",
            "--set", "data.val=", *map(str, extra)]


def wait_until_training(out, proc):
    # The trace appears once set-up is done and steps run; the signal handler is installed before that.
    deadline = time.time() + 120
    while not (out / "trace.h5").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "training never started"
        time.sleep(0.01)
    time.sleep(0.3)


def checkpoint_step(out):
    ckpts = sorted((out / "checkpoints").glob("ckpt_*.h5"))
    assert len(ckpts) == 1, ckpts
    r = run_est("inspect", ckpts[0], "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["step"]


def finish_and_compare(tmp, config, out, launcher=(), sets=()):
    r = subprocess.run([*launcher, *train_args(config, *sets, "--resume", "auto")], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    assert "resuming from" in r.stdout
    reference = tmp / "reference"
    r = subprocess.run([*launcher, *train_args(config, *sets, "--set", f"output.dir={reference}")], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    resumed = json.loads((out / "summary.json").read_text())
    uninterrupted = json.loads((reference / "summary.json").read_text())
    assert resumed["final_train_loss"] == uninterrupted["final_train_loss"]
    assert (out / "model.bin").read_bytes() == (reference / "model.bin").read_bytes()


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGTERM])
def test_signal_checkpoints_exits_75_and_resume_matches_an_uninterrupted_run(workspace, sig):
    tmp, config, _ = workspace
    out = tmp / "out"
    proc = subprocess.Popen(train_args(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_training(out, proc)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == EXIT_RESUMABLE, stderr
    assert f"({sig.name})" in stdout and "--resume auto" in stdout
    stopped = checkpoint_step(out)
    assert 0 < stopped < STEPS
    assert not (out / "summary.json").exists()
    finish_and_compare(tmp, config, out)


def test_a_signal_to_one_rank_stops_every_rank_at_the_same_step(workspace):
    tmp, config, _ = workspace
    out = tmp / "out"
    mpirun = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2"]
    sets = ("--set", "parallel.tp=2")
    proc = subprocess.Popen([*mpirun, *train_args(config, *sets)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_until_training(out, proc)
        ranks = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(ranks) == 2, ranks
        # Only rank 1's process: the others learn of it at the next step's exchange.
        subprocess.run(["kill", "-USR1", ranks[-1]], check=True)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == EXIT_RESUMABLE, stderr
    assert stdout.count("est: stopped after step") == 1
    assert 0 < checkpoint_step(out) < STEPS
    finish_and_compare(tmp, config, out, launcher=mpirun, sets=sets)


def test_resume_auto_of_a_finished_run_has_nothing_to_do(workspace):
    tmp, config, _ = workspace
    out = tmp / "out"
    # The first job of a chain: no checkpoint yet, so it starts afresh, and it checkpoints its last step
    # although output.checkpoint_every is 0.
    r = run_est("train", "--config", config, "--resume", "auto")
    assert r.returncode == 0, r.stderr
    model = (out / "model.bin").read_bytes()
    r = run_est("train", "--config", config, "--resume", "auto")
    assert r.returncode == 0, r.stderr
    assert "the run is complete, nothing to train" in r.stdout
    assert (out / "model.bin").read_bytes() == model
    # Naming the final checkpoint explicitly is still a mistake: there is nothing after it to train.
    final = sorted((out / "checkpoints").glob("ckpt_*.h5"))[-1]
    r = run_est("train", "--config", config, "--resume", final)
    assert r.returncode == 2
    assert "step" in r.stderr and str(final) in r.stderr
