"""Real short trainings for the analysis tests: an EST run, its full-model baseline and a 2-rank EST run of a
tiny model, and an EST run of a tiny Llama, made once per test module with the built est."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EST = os.environ.get("EST_BIN", str(ROOT / "build" / "bin" / "est"))
ANALYSIS = ROOT / "analysis" / "est-analysis"
sys.path.insert(0, str(ROOT / "analysis"))

CONFIG = """\
model:
  n_layer: 2
  n_head: 2
  n_embd: 32
  seq_len: 16
  vocab_size: 256
data:
  train: {data}/text_train_*.bin
  val: {data}/text_val_*.bin
train:
  batch_size: 2
  steps: 30
  lr: 1.0e-3
  warmup: 2
  eval_every: 10
  eval_batches: 2
runtime:
  threads: 1
"""


def est_analysis(*args, cwd=None):
    return subprocess.run([str(ANALYSIS), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


# 4 query heads over 2 key/value heads, 64 neurons.
LLAMA = ["model.arch=llama", "model.n_head=4", "model.n_kv_head=2", "model.mlp_hidden=64"]


def train(config, out, schedule, ranks=1, overrides=()):
    mpi = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-x", "OMP_NUM_THREADS=1", "-np", str(ranks)]
    sets = [arg for o in overrides for arg in ("--set", o)]
    r = subprocess.run([*(mpi if ranks > 1 else []), EST, "train", "--config", str(config),
                        "--set", f"est.schedule={ROOT / 'schedules' / schedule}", "--set", f"output.dir={out}", *sets],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


def tiny_config(tmp):
    """CONFIG over a small corpus prepared in tmp: tmp/tiny.yaml."""
    text = tmp / "text.txt"
    text.write_bytes(("In the beginning God created the heaven and the earth. " * 4000).encode())
    r = subprocess.run([EST, "data", "prepare", "--text", str(text), "--out", str(tmp / "data"),
                        "--val-fraction", "0.1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    config = tmp / "tiny.yaml"
    config.write_text(CONFIG.format(data=tmp / "data"))
    return config


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{"est", "baseline", "mpi", "llama"}: run directories, each with its trace.h5."""
    tmp = tmp_path_factory.mktemp("runs")
    config = tiny_config(tmp)
    return {"est": train(config, tmp / "est", "gpt2-est.yaml"),
            "baseline": train(config, tmp / "full", "full.yaml"),
            "mpi": train(config, tmp / "mpi", "gpt2-est.yaml", ranks=2),
            "llama": train(config, tmp / "llama", "gpt2-est.yaml", overrides=LLAMA)}
