import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EST = os.environ.get("EST_BIN", str(REPO / "build" / "bin" / "est"))
MPIRUN = ["mpirun", "--oversubscribe", "--bind-to", "none"]
# Open MPI refuses root without these; they change nothing else.
MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_btl="self,tcp")

CONFIG = """\
model: {{n_layer: 2, n_head: 2, n_embd: {n_embd}, seq_len: 16, vocab_size: 256}}
data: {{train: {data}/text_train_*.bin, val: {data}/text_val_*.bin}}
train: {{batch_size: 4, steps: {steps}, lr: 1.0e-3, warmup: 2, eval_every: 0, eval_batches: 2}}
output: {{dir: {out}, checkpoint_every: {every}}}
parallel: {{balance: false}}
runtime: {{threads: 1}}
"""


def run_est(*args, env=None, timeout=300, **kw):
    return subprocess.run([EST, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env, **kw)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    text = root / "text.txt"
    text.write_bytes(("In the beginning God created the heaven and the earth. " * 4000).encode())
    r = run_est("data", "prepare", "--text", text, "--out", root / "data", "--val-fraction", "0.1")
    assert r.returncode == 0, r.stderr
    return root / "data"


@pytest.fixture
def write_config(tmp_path, corpus):
    """write_config(out, steps=, every=, n_embd=) -> a config path; out is the run directory."""
    def write(out, steps=20, every=2, n_embd=64, name="run.yaml"):
        path = tmp_path / name
        path.write_text(CONFIG.format(data=corpus, out=out, steps=steps, every=every, n_embd=n_embd))
        return path
    return write


@pytest.fixture
def small_fs(tmp_path):
    """small_fs(size, read_only=False) -> a freshly mounted tmpfs of that size (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mounts = []

    def mount(size, read_only=False):
        where = tmp_path / f"fs{len(mounts)}"
        where.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        mounts.append(where)
        return where

    yield mount
    for where in mounts:
        subprocess.run(["umount", "-l", str(where)])


def leftovers(out):
    return sorted(str(p) for p in Path(out).rglob("*.tmp"))


def verify(checkpoint):
    r = run_est("inspect", checkpoint, "--verify")
    return r.returncode == 0
