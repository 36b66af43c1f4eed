"""The study corpus (scripts/prepare-corpus): at least 20 MB of English from Debian's packages, in llm.c shards
with a held-out validation split; and `est data prepare` over several inputs, one of them compressed."""
import gzip
import struct
import subprocess
from pathlib import Path

from conftest import run_est

ROOT = Path(__file__).resolve().parents[2]


def tokens(shard):
    data = shard.read_bytes()
    magic, version, n = struct.unpack("<3i", data[:12])
    assert (magic, version) == (20240520, 1) and len(data) == 1024 + 2 * n
    return data[1024:][::2]  # byte-level: the low byte of each uint16 token


def test_the_study_corpus_is_over_20_mb_with_a_validation_split(tmp_path):
    r = subprocess.run([ROOT / "scripts" / "prepare-corpus", tmp_path], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    train, val = tokens(tmp_path / "english_train_000000.bin"), tokens(tmp_path / "english_val_000000.bin")
    assert len(train) + len(val) > 20_000_000
    assert 0.04 < len(val) / (len(train) + len(val)) < 0.06
    assert b"In the beginning God created" in train[:200]  # the KJV first...
    assert b"[1913 Webster]" in train[-200_000:]           # ...then GCIDE


def test_prepare_reads_several_inputs_in_order_plain_or_gzip(tmp_path):
    first, second = b"plain text. " * 3000, b"compressed text. " * 3000
    (tmp_path / "a.txt").write_bytes(first)
    with gzip.open(tmp_path / "b.txt.gz", "wb") as f:
        f.write(second)
    r = run_est("data", "prepare", "--text", tmp_path / "a.txt", "--text", tmp_path / "b.txt.gz", "--name", "both",
                "--out", tmp_path / "out", "--val-fraction", "0")
    assert r.returncode == 0, r.stderr
    assert tokens(tmp_path / "out" / "both_train_000000.bin") == first + second
    r = run_est("data", "prepare", "--text", tmp_path / "a.txt", "--text", tmp_path / "absent.gz", "--out",
                tmp_path / "out2")
    assert r.returncode == 2 and "absent.gz" in r.stderr and not (tmp_path / "out2").exists()
