"""llama2.c model files against run.c: est writes a small Llama's model.bin, a NumPy transcription of run.c's forward
pass (double precision, interleaved RoPE, grouped-query attention, SwiGLU, RMSNorm with eps 1e-5) reads it, and
its logits must be est's (`est sample --logits`). Then model.init: llama2c:PATH reads the file back unchanged."""
import struct

import numpy as np
import pytest

from conftest import run_est

LLAMA_CONFIG = """\
model:
  arch: llama
  n_layer: 2
  n_head: 4
  n_kv_head: 2
  n_embd: 32
  mlp_hidden: 48
  seq_len: 16
  vocab_size: {vocab}
  tie_embeddings: {tied}
data:
  train: {data}/text_train_*.bin
train:
  batch_size: 2
  steps: 3
  lr: 0.02
  warmup: 0
output:
  dir: {out}
  trace: false
"""

PROMPT = "And God said, "  # within the context of 16


def read_run_c_file(path):
    """The header and the weights, walked as run.c's memory_map_weights walks them."""
    data = path.read_bytes()
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = struct.unpack("<7i", data[:28])
    values = np.frombuffer(data, dtype="<f4", offset=28).astype(np.float64)
    hs, V = dim // heads, abs(vocab)
    at = 0

    def take(*shape):
        nonlocal at
        n = int(np.prod(shape))
        t = values[at:at + n].reshape(shape)
        at += n
        return t

    w = {"emb": take(V, dim), "rms_att": take(layers, dim), "wq": take(layers, heads * hs, dim),
         "wk": take(layers, kv_heads * hs, dim), "wv": take(layers, kv_heads * hs, dim),
         "wo": take(layers, dim, heads * hs), "rms_ffn": take(layers, dim), "w1": take(layers, hidden, dim),
         "w2": take(layers, dim, hidden), "w3": take(layers, hidden, dim), "rms_final": take(dim)}
    take(seq_len, hs // 2)  # freq_cis_real, unused by run.c
    take(seq_len, hs // 2)  # freq_cis_imag
    w["wcls"] = w["emb"] if vocab > 0 else take(V, dim)
    assert at == values.size, "the file is not the size run.c expects"
    return (dim, layers, heads, kv_heads, hs), w


def rmsnorm(x, weight):
    return weight * x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-5)


def rope(x, hs, rows, interleaved):
    """run.c's rotation of the first `rows` columns: pairs (i, i+1) for even i, angle pos / 10000^(i % hs / hs).
    interleaved=False pairs a head's j with j + hs/2 instead (est's own order), to show that the pairing matters."""
    x = x.copy()
    pos = np.arange(x.shape[0])[:, None]
    for i in range(0, rows, 2):
        head, d = divmod(i, hs)
        a, b = (i, i + 1) if interleaved else (head * hs + d // 2, head * hs + d // 2 + hs // 2)
        angle = pos[:, 0] / 10000.0 ** (d / hs)
        v0, v1 = x[:, a].copy(), x[:, b].copy()
        x[:, a] = v0 * np.cos(angle) - v1 * np.sin(angle)
        x[:, b] = v0 * np.sin(angle) + v1 * np.cos(angle)
    return x


def run_c_logits(path, tokens, interleaved=True):
    (dim, layers, heads, kv_heads, hs), w = read_run_c_file(path)
    T, group = len(tokens), heads // kv_heads
    x = w["emb"][tokens]
    causal = np.tril(np.ones((T, T), dtype=bool))
    for l in range(layers):
        xb = rmsnorm(x, w["rms_att"][l])
        q = rope(xb @ w["wq"][l].T, hs, heads * hs, interleaved)
        k = rope(xb @ w["wk"][l].T, hs, kv_heads * hs, interleaved)
        v = xb @ w["wv"][l].T
        out = np.zeros((T, heads * hs))
        for h in range(heads):
            kv = slice((h // group) * hs, (h // group + 1) * hs)
            scores = np.where(causal, q[:, h * hs:(h + 1) * hs] @ k[:, kv].T / np.sqrt(hs), -np.inf)
            p = np.exp(scores - scores.max(axis=1, keepdims=True))
            out[:, h * hs:(h + 1) * hs] = (p / p.sum(axis=1, keepdims=True)) @ v[:, kv]
        x = x + out @ w["wo"][l].T
        xb = rmsnorm(x, w["rms_ffn"][l])
        gate, up = xb @ w["w1"][l].T, xb @ w["w3"][l].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ w["w2"][l].T
    return rmsnorm(x, w["rms_final"]) @ w["wcls"].T


def train_llama(workspace, vocab, tied, name="run"):
    tmp, _, data = workspace
    config = tmp / f"{name}.yaml"
    out = tmp / name
    config.write_text(LLAMA_CONFIG.format(vocab=vocab, tied=str(tied).lower(), data=data, out=out))
    r = run_est("train", "--config", config)
    assert r.returncode == 0, r.stderr
    return config, out / "model.bin"


@pytest.mark.parametrize("vocab,tied", [(256, False), (300, True)])
def test_run_c_forward_of_the_file_gives_ests_logits(workspace, vocab, tied):
    tmp, _, _ = workspace
    _, model = train_llama(workspace, vocab, tied)
    tokens = list(PROMPT.encode())
    prompt = PROMPT if vocab == 256 else " ".join(map(str, tokens))  # 300 tokens: the prompt is ids
    logits = tmp / "logits.npy"
    r = run_est("sample", "--model", model, "--prompt", prompt, "--tokens", 0, "--logits", logits)
    assert r.returncode == 0, r.stderr
    ours = np.load(logits)
    assert ours.shape == (len(tokens), vocab) and ours.dtype == np.float32
    want = run_c_logits(model, tokens)
    scale = np.abs(want).max()
    assert np.abs(ours - want).max() <= 1e-5 * scale, np.abs(ours - want).max() / scale
    # The comparison sees the RoPE pairing: est's rotate-half order read as run.c's is another model.
    assert np.abs(run_c_logits(model, tokens, interleaved=False) - want).max() > 1e-3 * scale


def test_init_from_a_llama2c_file_reads_it_back_unchanged(workspace):
    tmp, _, _ = workspace
    config, model = train_llama(workspace, 256, False)
    # A learning rate far below the weights' last bit: the run saves exactly what it loaded.
    again = tmp / "again"
    r = run_est("train", "--config", config, "--set", f"model.init=llama2c:{model}", "--set", "train.lr=1e-30",
                "--set", "train.min_lr=0", "--set", "train.steps=1", "--set", f"output.dir={again}")
    assert r.returncode == 0, r.stderr
    assert (again / "model.bin").read_bytes() == model.read_bytes()


def test_init_from_a_llama2c_file_of_another_shape_names_the_field(workspace):
    tmp, _, _ = workspace
    config, model = train_llama(workspace, 256, False)
    r = run_est("train", "--config", config, "--set", f"model.init=llama2c:{model}", "--set", "model.n_kv_head=4",
                "--set", f"output.dir={tmp / 'other'}")
    assert r.returncode == 2, r.stderr
    assert str(model) in r.stderr and "n_kv_heads: the file has 2, the config 4" in r.stderr
    r = run_est("train", "--config", config, "--set", f"model.init=llama2c:{model}", "--set", "model.seq_len=32",
                "--set", f"output.dir={tmp / 'other'}")
    assert r.returncode == 2 and "seq_len" in r.stderr and str(model) in r.stderr, r.stderr


def test_each_architecture_reads_only_its_own_format(workspace):
    tmp, config, _ = workspace  # the GPT-2 config
    r = run_est("train", "--config", config, "--set", "model.init=llama2c:x.bin")
    assert r.returncode == 2 and "model.init" in r.stderr and "llmc:" in r.stderr, r.stderr
    llama, _ = train_llama(workspace, 256, False)
    r = run_est("train", "--config", llama, "--set", "model.init=llmc:x.bin")
    assert r.returncode == 2 and "model.init" in r.stderr and "llama2c:" in r.stderr, r.stderr
