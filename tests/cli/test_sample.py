"""est sample: greedy and seeded sampling from the model.bin of short `est train` runs, GPT-2 (llm.c's format) and
Llama (llama2.c's), byte-level or token ids (printed as ids or through an llm.c tokenizer file), and one clear
error, exit status 2, for a bad file, prompt or setting."""
import re
import struct
import subprocess

import pytest

from conftest import EST, TINY_CONFIG, run_est

LLAMA = """\
  arch: llama
  n_kv_head: 1
  mlp_hidden: 48
"""
PROMPT = "And God said"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """model.bin of three tiny runs: byte-level GPT-2 and Llama, and a GPT-2 of 300 tokens."""
    tmp = tmp_path_factory.mktemp("sample")
    text = tmp / "text.txt"
    text.write_bytes(("In the beginning God created the heaven and the earth. " * 4000).encode())
    data = tmp / "data"
    assert run_est("data", "prepare", "--text", text, "--out", data, "--val-fraction", "0.1").returncode == 0
    found = {}
    for name, model_keys, vocab in [("gpt2", "", 256), ("llama", LLAMA, 256), ("ids", "", 300)]:
        config = tmp / f"{name}.yaml"
        yaml = TINY_CONFIG.format(data=data, out=tmp / name).replace("model:\n", "model:\n" + model_keys)
        config.write_text(yaml.replace("vocab_size: 256", f"vocab_size: {vocab}"))
        r = run_est("train", "--config", config, "--set", "output.trace=false")
        assert r.returncode == 0, r.stderr
        found[name] = tmp / name / "model.bin"
    return tmp, found


def sample(model, *args, prompt=PROMPT):
    """Its stdout as bytes: a byte-level sample need not be UTF-8."""
    return subprocess.run([EST, "sample", "--model", str(model), "--prompt", prompt, *map(str, args)],
                          capture_output=True, timeout=300)


def text_of(r):
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.endswith(b"\n")
    return r.stdout[:-1]


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_greedy_is_deterministic_whatever_the_seed(models, arch):
    _, found = models
    first = text_of(sample(found[arch], "--tokens", 30, "--temperature", 0))
    assert text_of(sample(found[arch], "--tokens", 30, "--temperature", 0)) == first
    assert text_of(sample(found[arch], "--tokens", 30, "--temperature", 0, "--seed", 99)) == first


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_a_seed_reproduces_its_sample_and_another_seed_differs(models, arch):
    _, found = models
    seven = text_of(sample(found[arch], "--tokens", 40, "--seed", 7))
    assert text_of(sample(found[arch], "--tokens", 40, "--seed", 7)) == seven
    assert text_of(sample(found[arch], "--tokens", 40, "--seed", 8)) != seven


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_byte_level_prints_the_prompt_and_the_requested_bytes_past_the_context(models, arch):
    _, found = models
    out = text_of(sample(found[arch], "--tokens", 80, "--temperature", 0.8))  # 12 + 80 bytes over a context of 16
    assert out.startswith(PROMPT.encode()) and len(out) == len(PROMPT) + 80


def test_other_vocabularies_read_and_print_token_ids(models):
    _, found = models
    ids = text_of(sample(found["ids"], "--tokens", 5, prompt="1 2 299")).decode().split(" ")
    assert len(ids) == 8 and ids[:3] == ["1", "2", "299"] and all(0 <= int(t) < 300 for t in ids)


def write_tokenizer(path, tokens, magic=20240328, version=2):
    header = [0] * 256
    header[0], header[1], header[2], header[3] = magic, version, len(tokens), len(tokens) - 1
    with open(path, "wb") as f:
        f.write(struct.pack("<256I", *header))
        for t in tokens:
            f.write(bytes([len(t)]) + t)


def test_a_tokenizer_file_decodes_the_ids(models):
    tmp, found = models
    tokenizer = tmp / "tokenizer.bin"
    write_tokenizer(tokenizer, [f"<{i}>".encode() for i in range(300)])
    out = text_of(sample(found["ids"], "--tokens", 5, "--tokenizer", tokenizer, prompt="1 2 299")).decode()
    assert out.startswith("<1><2><299>") and re.fullmatch(r"(<\d+>){8}", out), out


def error_of(r):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    return r.stderr.decode()


def test_bad_model_files_name_the_file(models):
    tmp, found = models
    missing = tmp / "none.bin"
    assert str(missing) in error_of(sample(missing))
    garbage = tmp / "garbage.bin"
    garbage.write_bytes(b"not a model file, just some text" * 10)
    assert str(garbage) in error_of(sample(garbage))
    truncated = tmp / "truncated.bin"
    truncated.write_bytes(found["llama"].read_bytes()[:-4])
    err = error_of(sample(truncated))
    assert str(truncated) in err and "size" in err


def test_bad_prompts_and_settings_name_the_option(models):
    tmp, found = models
    assert "--prompt" in error_of(sample(found["ids"], prompt="1 300"))
    assert "--prompt" in error_of(sample(found["ids"], prompt="1 two"))
    assert "--prompt" in error_of(sample(found["gpt2"], prompt=""))
    assert "--temperature" in error_of(sample(found["gpt2"], "--temperature", -1))
    tokenizer = tmp / "short_tokenizer.bin"
    write_tokenizer(tokenizer, [b"a"] * 10)
    err = error_of(sample(found["ids"], "--tokenizer", tokenizer, prompt="1"))
    assert str(tokenizer) in err and "vocab_size" in err
    write_tokenizer(tokenizer, [b"a"] * 300, magic=1)
    assert "magic" in error_of(sample(found["ids"], "--tokenizer", tokenizer, prompt="1"))
