"""Faults injected into real runs: full disks, a file-size limit, a read-only directory, a corrupted shard, a killed
rank. Each ends with one error line naming the file, what was being written and the OS's reason, one exit status
on every rank, no .tmp left, the last good checkpoint intact and verifying, and exact continuation where one is
possible."""
import random
import resource
import shutil
import signal
import struct
import subprocess
import time
from pathlib import Path

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
    # Slowed (the mathematics unchanged) to last about 10 s, so that the kill lands mid-run.
    job = subprocess.Popen(launch(out, "--set", "parallel.slow_rank=0", "--set", "parallel.slow_factor=30"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=MPI_ENV)
    rng = random.Random(ranks)
    while not checkpoints(out) and job.poll() is None:
        time.sleep(0.05)
    time.sleep(rng.uniform(0.2, 3.0))
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
