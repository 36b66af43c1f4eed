import os
import struct
import subprocess
from pathlib import Path

import pytest

EST = os.environ.get("EST_BIN", str(Path(__file__).resolve().parents[2] / "build" / "bin" / "est"))

TINY_CONFIG = """\
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
  steps: 6
  lr: 1.0e-3
  warmup: 2
  eval_every: 3
  eval_batches: 2
output:
  dir: {out}
"""


def run_est(*args, cwd=None):
    return subprocess.run([EST, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


def write_shard(path, tokens, magic=20240520, version=1, ntok=None):
    header = [0] * 256
    header[0], header[1], header[2] = magic, version, len(tokens) if ntok is None else ntok
    with open(path, "wb") as f:
        f.write(struct.pack("<256i", *header))
        f.write(struct.pack(f"<{len(tokens)}H", *tokens))


@pytest.fixture
def workspace(tmp_path):
    """A prepared byte-level corpus and a tiny config writing to tmp_path/out."""
    text = tmp_path / "text.txt"
    text.write_bytes(("In the beginning God created the heaven and the earth. " * 4000).encode())
    data = tmp_path / "data"
    r = run_est("data", "prepare", "--text", text, "--out", data, "--val-fraction", "0.1")
    assert r.returncode == 0, r.stderr
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_CONFIG.format(data=data, out=tmp_path / "out"))
    return tmp_path, config, data
