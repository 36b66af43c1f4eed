"""Faults injected into real runs: full disks, a file-size limit, a read-only directory, a corrupted shard, a killed
rank, a kill that tears a trace write. Each ends with one error line naming the file, what was being written and the
OS's reason, one exit status on every rank, no .tmp left, the last good checkpoint intact and verifying, and exact
continuation where one is possible."""
import os
import random
import re
import resource
import shutil
import signal
import struct
import subprocess
import time
from pathlib import Path

import h5py
import pytest

from conftest import EST, MPI_ENV, MPIRUN, leftovers, run_est, verify

EX_IOERR = 74


def one_error(r):
    """est's one error line. Open MPI's MPI-IO layer may add its own line about a failed write (mca_...); HDF5's
    error stack must not appear."""
    lines = r.stderr.strip().splitlines()
    ours = [l for l in lines if not l.lstrip(",").startswith("mca_")]
    assert len(ours) == 1 and ours[0].startswith("est: error: "), r.stderr
    return ours[0]


def checkpoints(out):
    return sorted((Path(out) / "checkpoints").glob("ckpt_*.h5"))


def test_a_full_disk_at_a_checkpoint_is_one_error_and_the_run_continues_elsewhere_exactly(
        tmp_path, write_config, small_fs):
    reference = run_est("train", "--config", write_config(tmp_path / "reference", name="reference.yaml"))
    assert reference.returncode == 0, reference.stderr
    # Room for two checkpoints of the 0.12M-parameter model (1.4 MB each) and the trace, not for a third.
    out = small_fs("5m") / "out"
    r = run_est("train", "--config", write_config(out))
    line = one_error(r)
    assert r.returncode == EX_IOERR, r.stderr
    assert "/checkpoints/ckpt_00000006.h5.tmp: writing the checkpoint of step 6: No space left on device" in line
    assert line.endswith(f"the newest good checkpoint is {out}/checkpoints/ckpt_00000004.h5")
    assert leftovers(out) == []
    assert [p.name for p in checkpoints(out)] == ["ckpt_00000002.h5", "ckpt_00000004.h5"]
    assert verify(checkpoints(out)[-1])
    # Moved to a disk with room, the run continues from step 4 to the uninterrupted run's model, bit for bit.
    roomy = tmp_path / "roomy"
    shutil.copytree(out, roomy)
    resumed = run_est("train", "--config", write_config(roomy), "--resume", "auto")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout and "ckpt_00000004.h5" in resumed.stdout
    assert (roomy / "model.bin").read_bytes() == (tmp_path / "reference" / "model.bin").read_bytes()


def limit_file_size(limit):
    def apply():
        # Ignored, SIGXFSZ turns into the EFBIG a write past the limit returns, as with a quota.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_write_that_fails_inside_hdf5_is_translated_and_ends_cleanly(tmp_path, write_config):
    out = tmp_path / "out"
    first = run_est("train", "--config", write_config(out, n_embd=256), "--set", "train.stop_after=2")
    assert first.returncode == 0, first.stderr
    # The next checkpoint (20 MB) passes the free-space check but cannot grow past 12 MB (MPI's start-up files
    # need a few).
    r = subprocess.run([EST, "train", "--config", write_config(out, n_embd=256), "--resume", "auto"],
                       capture_output=True, text=True, timeout=300, preexec_fn=limit_file_size(12 << 20))
    line = one_error(r)
    assert r.returncode == EX_IOERR, r.stderr  # not 139: nothing crashes at shutdown
    assert ("/checkpoints/ckpt_00000004.h5.tmp: writing the checkpoint of step 4: File too large (the file-size "
            "limit, ulimit -f, is 12 MiB)") in line, line
    assert line.endswith(f"the newest good checkpoint is {out}/checkpoints/ckpt_00000002.h5")
    assert "HDF5-DIAG" not in r.stderr
    assert leftovers(out) == []
    assert verify(checkpoints(out)[-1])


def test_warn_keeps_training_past_a_failed_checkpoint_and_the_next_one_tries_again(tmp_path, write_config, small_fs):
    out = small_fs("5m") / "out"
    r = run_est("train", "--config", write_config(out, steps=10), "--set", "output.on_checkpoint_error=warn",
                "--set", "output.keep=2", "--set", "output.save_model=false")
    assert r.returncode == 0, r.stderr
    warnings = [l for l in r.stderr.splitlines() if l.startswith("est: warning:")]
    assert warnings and all("No space left on device" in w and "the next checkpoint tries again" in w
                            for w in warnings), r.stderr
    assert leftovers(out) == []
    assert all(verify(p) for p in checkpoints(out))


def test_a_full_disk_during_a_trace_append_is_one_error(tmp_path, write_config, small_fs):
    out = small_fs("160k") / "out"
    r = run_est("train", "--config", write_config(out, steps=3000, every=0, n_embd=32),
                "--set", "output.save_model=false")
    line = one_error(r)
    assert r.returncode == EX_IOERR, r.stderr
    assert f"{out}/trace.h5: " in line and " to the trace: No space left on device" in line, line
    assert leftovers(out) == []


def test_a_read_only_output_directory_is_one_error_before_training(tmp_path, write_config, small_fs):
    out = small_fs("1m", read_only=True) / "out"
    r = run_est("train", "--config", write_config(out))
    line = one_error(r)
    assert r.returncode == EX_IOERR, r.stderr
    assert line == f"est: error: {out}: creating the output directory: Read-only file system"


def test_a_shard_corrupted_in_the_middle_names_shard_and_offset_on_every_rank(tmp_path, write_config, corpus):
    data = tmp_path / "data"
    shutil.copytree(corpus, data)
    shard = sorted(data.glob("text_train_*.bin"))[0]
    raw = bytearray(shard.read_bytes())
    tokens = (len(raw) - 1024) // 2
    offset = tokens // 2
    struct.pack_into("<H", raw, 1024 + 2 * offset, 300)  # above vocab_size 256
    shard.write_bytes(bytes(raw))
    config = write_config(tmp_path / "out", steps=6000, every=0, n_embd=32)
    config.write_text(config.read_text().replace(str(corpus), str(data)))
    for ranks in (1, 2):
        launcher = [] if ranks == 1 else [*MPIRUN, "-np", "2"]
        r = subprocess.run([*launcher, EST, "train", "--config", config, "--set", f"output.dir={tmp_path}/out{ranks}"],
                           capture_output=True, text=True, timeout=300, env=MPI_ENV)
        assert r.returncode == 2, r.stderr
        errors = [l for l in r.stderr.splitlines() if l.startswith("est: error:")]
        assert errors == [f"est: error: {shard}: token: token 300 at offset {offset} is not below vocab_size 256"], \
            r.stderr
        assert "MPI_ABORT" not in r.stderr


@pytest.mark.parametrize("ranks", [2, 4])
def test_a_rank_killed_at_a_random_step_ends_the_job_and_auto_resume_continues_exactly(
        tmp_path, write_config, ranks):
    def launch(out, *extra):
        return [*MPIRUN, "-np", str(ranks), EST, "train", "--config", write_config(out, steps=300, every=5, n_embd=32),
                *extra]
    reference = subprocess.run(launch(tmp_path / "reference"), capture_output=True, text=True, timeout=300,
                               env=MPI_ENV)
    assert reference.returncode == 0, reference.stderr
    out = tmp_path / "killed"
    # Slowed (the mathematics unchanged) so that a step takes a few milliseconds; the kill comes a random time after
    # a random step's checkpoint in the first half, never after the run has ended however fast the machine is.
    job = subprocess.Popen(launch(out, "--set", "parallel.slow_rank=0", "--set", "parallel.slow_factor=30"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=MPI_ENV)
    rng = random.Random(ranks)
    kill_after = rng.randrange(5, 150, 5)
    while not any(int(c.stem[len("ckpt_"):]) >= kill_after for c in checkpoints(out)) and job.poll() is None:
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 0.1))
    assert job.poll() is None, job.communicate()[1]
    victim = rng.randrange(ranks)
    pids = subprocess.run(["pgrep", "-f", f"^{EST} train "], capture_output=True, text=True).stdout.split()
    assert len(pids) == ranks, pids
    subprocess.run(["kill", "-KILL", sorted(pids, key=int)[victim]])
    killed_at = time.monotonic()
    job.communicate(timeout=60)
    assert time.monotonic() - killed_at < 30, "the job ends within 30 s of losing a rank"
    assert job.returncode != 0
    resumed = subprocess.run(launch(out, "--resume", "auto"), capture_output=True, text=True, timeout=300, env=MPI_ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert leftovers(out) == [], "a partial checkpoint of the killed run is removed by the next one"
    assert (out / "model.bin").read_bytes() == (tmp_path / "reference" / "model.bin").read_bytes()


# Three kills, each at a random write. About half the writes are of chunks, which a tear cannot harm (the rows they
# held are rewritten as they were, the new ones are past the last checkpoint): one kill would miss the dataset
# headers and the superblock half the time.
@pytest.mark.parametrize("kill", range(3))
def test_a_kill_that_tears_a_trace_write_resumes_from_the_last_checkpoint_with_every_step_traced_once(
        tmp_path, write_config, kill):
    injector = tmp_path / "kill_during_write.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", injector, Path(__file__).with_name("kill_during_write.c"), "-ldl"],
                   check=True)
    preload = dict(os.environ, LD_PRELOAD=str(injector))
    steps = 50
    # Checkpoints every 15 steps and the trace's own flushes every 10 rows: a kill may tear either kind of flush.
    reference = tmp_path / "reference"
    renames = tmp_path / "renames.log"
    r = run_est("train", "--config", write_config(reference, steps=steps, every=15, n_embd=32, name="reference.yaml"),
                env=dict(preload, KILL_DURING_WRITE_LOG=str(renames)))
    assert r.returncode == 0, r.stderr
    # The trace writes done by the time each checkpoint was renamed into place: a write after the first checkpoint's
    # is in a flush of rows that the checkpoint before it does not cover.
    logged = re.findall(r"^(\d+) .*/ckpt_(\d+)\.h5$", renames.read_text(), re.M)
    writes_before = {int(step): int(n) for n, step in logged}
    seed = int(os.environ.get("EST_FAULT_SEED", random.randrange(1 << 32)))
    kill_at = random.Random(seed).randint(writes_before[min(writes_before)] + 1, writes_before[max(writes_before)])
    resume_step = max(step for step, n in writes_before.items() if n < kill_at)
    context = (f"EST_FAULT_SEED={seed}: trace write {kill_at} of {writes_before[max(writes_before)]} torn, "
               f"the checkpoints' writes {writes_before}")

    out = tmp_path / "killed"
    config = write_config(out, steps=steps, every=15, n_embd=32)
    killed = run_est("train", "--config", config, env=dict(preload, KILL_DURING_WRITE_AT=str(kill_at)))
    assert killed.returncode == -signal.SIGKILL, f"{context}\n{killed.stderr}"
    assert f"kill_during_write: write {kill_at} to trace.h5 torn" in killed.stderr, context
    last_good = out / "checkpoints" / f"ckpt_{resume_step:08d}.h5"
    assert checkpoints(out)[-1] == last_good, context
    assert verify(last_good), context

    resumed = run_est("train", "--config", config, "--resume", "auto")
    assert resumed.returncode == 0, f"{context}\n{resumed.stderr}"
    assert f"resuming from {last_good} at step {resume_step} " in resumed.stdout, f"{context}\n{resumed.stdout}"
    assert (out / "model.bin").read_bytes() == (reference / "model.bin").read_bytes(), context
    assert leftovers(out) == [], context
    assert not (out / "trace.h5.bak").exists(), "a trace closed cleanly needs no copy to fall back on"
    with h5py.File(out / "trace.h5", "r") as trace, h5py.File(reference / "trace.h5", "r") as uninterrupted:
        assert trace["step"][:].tolist() == list(range(1, steps + 1)), context
        assert {name: d.shape[0] for name, d in trace.items() if d.shape[0] != steps} == {}, context
        assert (trace["loss"][:] == uninterrupted["loss"][:]).all(), context
