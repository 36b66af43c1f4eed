"""A run directory has one writer: a second `est train` on it is refused naming the first; a killed run's lock
is taken over."""
import socket
import subprocess
import time

from conftest import EST, run_est


def wait_for_holder(lock, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if lock.exists() and "pid" in lock.read_text():
            return lock.read_text()
        time.sleep(0.1)
    raise AssertionError(f"{lock} was not written within {timeout} s")


def test_a_second_run_on_the_same_directory_is_refused_and_a_killed_runs_lock_taken_over(workspace):
    tmp, config, _ = workspace
    lock = tmp / "out" / ".est.lock"
    # Slowed down so that it is still training while the second one starts.
    first = subprocess.Popen([EST, "train", "--config", config, "--set", "train.steps=100000",
                              "--set", "parallel.slow_rank=0", "--set", "parallel.slow_factor=20"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        holder = wait_for_holder(lock, first)
        assert holder.startswith(f"est pid {first.pid} on {socket.gethostname()}, since 20"), holder
        second = run_est("train", "--config", config, "--resume", "auto")
        assert second.returncode == 2, second.stderr
        assert second.stderr.count("\n") == 1, second.stderr
        assert second.stderr.startswith(f"est: error: {lock}: output.dir: another run writes to this directory "
                                        f"(est pid {first.pid} on {socket.gethostname()}"), second.stderr
        assert not (tmp / "out" / "summary.json").exists()
    finally:
        first.kill()
        first.wait()
    # SIGKILL leaves the file, not the lock.
    assert f"pid {first.pid}" in lock.read_text()
    third = run_est("train", "--config", config)
    assert third.returncode == 0, third.stderr
    assert (tmp / "out" / "summary.json").exists()
