"""The est command line end to end: training writes its outputs; bad input of every kind is one clear error
line naming the file and the key, exit status 2, and nothing in the output directory."""
import json
import os
import struct
import subprocess

from conftest import EST, TINY_CONFIG, run_est, write_shard


def expect_bad_input(result, out_dir, *fragments):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("est: error: "), lines[0]
    for fragment in fragments:
        assert str(fragment) in lines[0], (fragment, lines[0])
    assert not out_dir.exists(), "bad input must not write the output directory"


def test_train_writes_summary_and_model(workspace):
    tmp, config, _ = workspace
    r = run_est("train", "--config", config)
    assert r.returncode == 0, r.stderr
    out = tmp / "out"
    summary = json.loads((out / "summary.json").read_text())
    for key in ("final_train_loss", "final_val_loss", "steps", "tokens", "wall_seconds", "tokens_per_second",
                "flops"):
        assert key in summary, key
    assert summary["steps"] == 6
    assert summary["tokens"] == 6 * 2 * 16
    assert summary["final_val_loss"] is not None
    assert "val loss" in r.stdout
    # llm.c model file: header + parameters (2 layers, C=32, Vp=256, maxT=16).
    C, L, V, T = 32, 2, 256, 16
    params = V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C
    assert (out / "model.bin").stat().st_size == 1024 + 4 * params
    header = struct.unpack("<8i", (out / "model.bin").read_bytes()[:32])
    assert header == (20240326, 3, T, V, L, 2, C, V)


def test_train_starts_from_its_own_llmc_model_file(workspace):
    tmp, config, _ = workspace
    assert run_est("train", "--config", config, "--set", "train.steps=20", "--set", "train.lr=3e-3").returncode == 0
    first_batch_loss = {}
    for name, init in (("fresh", "7"), ("trained", f"llmc:{tmp / 'out' / 'model.bin'}")):
        r = run_est("train", "--config", config, "--set", f"model.init={init}", "--set", f"output.dir={tmp / name}",
                    "--set", "train.steps=1")
        assert r.returncode == 0, r.stderr
        first_batch_loss[name] = json.loads((tmp / name / "summary.json").read_text())["final_train_loss"]
    # The same first batch: the trained weights carried over through the file.
    assert first_batch_loss["trained"] < first_batch_loss["fresh"] - 0.5


def test_bench_prints_the_required_json(workspace):
    _, config, _ = workspace
    r = run_est("bench", "--config", config, "--steps", "2")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    for key in ("tokens_per_second", "step_seconds", "achieved_gflops", "achieved_gflops_formula", "gemm_gflops",
                "gemm_fraction", "peak_rss_mib", "flops_per_step", "flops_convention", "precision", "attention"):
        assert key in j, key
    assert j["precision"] == "fp32" and j["attention"] == "materialized"
    assert j["gemm_fraction"] == j["achieved_gflops"] / j["gemm_gflops"]
    assert [s["stage"] for s in j["stages"]] == [1]  # no schedule: one full-model stage


def test_precision_is_reported_and_bf16_without_the_cpus_bf16_instructions_is_refused(workspace):
    tmp, config, _ = workspace
    r = run_est("train", "--config", config, "--set", "runtime.precision=tf32", "--set", "train.steps=2")
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp / "out" / "summary.json").read_text())
    assert summary["precision"] == "tf32"
    assert f"GEMM {summary['gemm_backend']} tf32 (as fp32 on CPUs) on" in r.stdout
    if summary["gemm_backend"] != "onednn":
        return
    # oneDNN held to AVX2 (DNNL_MAX_CPU_ISA) has no bf16 instructions on any CPU; CBLAS has no bf16 products.
    env = dict(os.environ, DNNL_MAX_CPU_ISA="AVX2")
    r = subprocess.run([EST, "train", "--config", str(config), "--set", f"output.dir={tmp / 'bf16'}", "--set",
                        "runtime.precision=bf16"], capture_output=True, text=True, env=env, timeout=600)
    expect_bad_input(r, tmp / "bf16", config, "runtime.precision: bf16 needs a CPU with AVX512-BF16 or AMX-BF16",
                     "this CPU has AVX2")
    r = run_est("train", "--config", config, "--set", f"output.dir={tmp / 'bf16'}", "--set", "runtime.precision=bf16",
                "--set", "runtime.gemm=cblas")
    expect_bad_input(r, tmp / "bf16", config, "runtime.precision: bf16", "cblas has no bf16 products")


def test_fused_attention_trains_and_plans_row_statistics_instead_of_maps(workspace):
    tmp, config, _ = workspace
    r = run_est("train", "--config", config, "--set", "model.attention=fused", "--set", "train.steps=2")
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp / "out" / "summary.json").read_text())
    assert summary["attention"] == "fused" and summary["final_train_loss"] > 0
    plans = {}
    for attention in ("materialized", "fused"):
        r = run_est("plan", "--json", "--config", config, "--set", f"model.attention={attention}")
        assert r.returncode == 0, r.stderr
        plans[attention] = {i["name"]: i["bytes"] for i in json.loads(r.stdout)["items"]}
    B, H, T, L = 2, 2, 16, 2  # every layer's and one backward's: a T x T map or one float per row (b, head, t)
    assert plans["materialized"]["attention maps"] == 4 * (L + 1) * B * H * T * T
    assert plans["fused"]["attention statistics"] == 4 * (L + 1) * B * H * T
    assert "attention maps" not in plans["fused"]
    r = run_est("plan", "--config", config, "--set", "model.attention=fused")
    assert r.returncode == 0 and "attention statistics" in r.stdout, r.stderr
    assert "fused attention: materialized, the attention maps would take" in r.stdout
    r = run_est("bench", "--config", config, "--steps", "1", "--set", "model.attention=fused")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["attention"] == "fused"
    r = run_est("train", "--config", config, "--set", f"output.dir={tmp / 'bad'}", "--set", "model.attention=flash")
    expect_bad_input(r, tmp / "bad", "model.attention", "unknown attention 'flash' (materialized, fused)")


def test_unknown_key(workspace):
    tmp, config, _ = workspace
    config.write_text(config.read_text().replace("n_layer:", "n_layers:"))
    expect_bad_input(run_est("train", "--config", config), tmp / "out", config, "model.n_layers")


def test_wrong_type(workspace):
    tmp, config, _ = workspace
    expect_bad_input(run_est("train", "--config", config, "--set", "train.steps=many"), tmp / "out", "--set",
                     "train.steps")


def test_missing_config_file(tmp_path):
    expect_bad_input(run_est("train", "--config", tmp_path / "none.yaml"), tmp_path / "out", "none.yaml", "file")


def test_missing_data(workspace):
    tmp, config, _ = workspace
    expect_bad_input(run_est("train", "--config", config, "--set", f"data.train={tmp}/nothing_*.bin"), tmp / "out",
                     "nothing_*.bin", "data.train")


def test_shard_with_wrong_magic(workspace):
    tmp, config, _ = workspace
    bad = tmp / "bad_train_000000.bin"
    write_shard(bad, list(range(200)), magic=1234)
    expect_bad_input(run_est("train", "--config", config, "--set", f"data.train={bad}"), tmp / "out", bad, "magic")


def test_truncated_shard(workspace):
    tmp, config, _ = workspace
    bad = tmp / "cut_train_000000.bin"
    write_shard(bad, list(range(200)), ntok=400)
    expect_bad_input(run_est("train", "--config", config, "--set", f"data.train={bad}"), tmp / "out", bad)


def test_vocabulary_larger_than_the_model(workspace):
    tmp, config, _ = workspace
    bad = tmp / "gpt2tok_train_000000.bin"
    write_shard(bad, [50256] + list(range(300, 500)))
    expect_bad_input(run_est("train", "--config", config, "--set", f"data.train={bad}"), tmp / "out", bad, "token")


def test_model_file_with_unknown_version(workspace):
    tmp, config, _ = workspace
    model = tmp / "bf16.bin"
    header = [0] * 256
    header[:8] = [20240326, 5, 16, 256, 2, 2, 32, 256]
    model.write_bytes(struct.pack("<256i", *header) + bytes(1000))
    expect_bad_input(run_est("train", "--config", config, "--set", f"model.init=llmc:{model}"), tmp / "out", model,
                     "version")


def test_bad_command_line(tmp_path):
    r = run_est("train", "--config", tmp_path / "x.yaml", "--no-such-flag")
    assert r.returncode == 2
    r = run_est("frobnicate")
    assert r.returncode == 2
