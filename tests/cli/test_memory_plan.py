"""The memory plan: est plan itemises a rank's memory before anything is allocated, a run that cannot fit is
refused at once, est bench holds the plan against the measured peak, est simulate against a cluster's GPUs."""
import json
from pathlib import Path

from conftest import run_est
from test_parallel_cli import mpirun

REPO = Path(__file__).resolve().parents[2]
GPT2_124M = REPO / "configs" / "gpt2-124m.yaml"
H100 = REPO / "jobs" / "clusters" / "h100-ib-ndr.yaml"
# Attention maps of 16k-token sequences: terabytes per rank, on any machine.
HUGE = ["--set", "model.n_layer=8", "--set", "model.n_head=64", "--set", "model.n_embd=512",
        "--set", "model.seq_len=16384", "--set", "model.max_seq_len=16384", "--set", "train.batch_size=8"]


def plan(*args):
    r = run_est("plan", "--json", *args, cwd=REPO)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def items(p):
    return {i["name"]: i["bytes"] for i in p["items"]}


def test_the_plan_itemises_a_rank_and_adds_up():
    p = plan("--config", GPT2_124M)
    got = items(p)
    params = 4 * 124475904  # llm.c's GPT-2 124M with the padded vocabulary
    assert got["parameters"] == got["gradients"] == params and got["AdamW moments"] == 2 * params
    assert got["compact copies"] == 0  # no schedule: the full model every step
    assert got["attention maps"] == 4 * (12 + 1) * 4 * 12 * 1024 * 1024  # every layer's maps and one backward's
    assert got["logits"] == 4 * 4 * 1024 * 50304
    assert got["communication buffers"] == 0
    assert p["total_bytes"] == sum(got.values()) and p["tp"] == 1 and p["dp"] == 1 and p["batch_per_rank"] == 4


def test_layouts_split_what_they_should():
    one = items(plan("--config", GPT2_124M))
    tp2 = items(plan("--config", GPT2_124M, "--set", "parallel.tp=2"))
    # Heads and neurons split over tensor-parallel ranks; embeddings, norms and the LM head do not.
    assert one["parameters"] / 2 < tp2["parameters"] < one["parameters"]
    assert tp2["attention maps"] == one["attention maps"] // 2 and tp2["logits"] == one["logits"]
    assert tp2["communication buffers"] == 4 * 4 * 1024 * 768  # an activation all-reduced within the group
    # Two replicas hold up to twice their even share (the balancer may move work to them), or the share.
    dp2 = plan("--config", GPT2_124M, "--ranks", "2", "--set", "train.batch_size=8")
    assert dp2["dp"] == 2 and dp2["batch_per_rank"] == 8
    assert items(dp2)["communication buffers"] == one["gradients"]
    fixed = plan("--config", GPT2_124M, "--ranks", "2", "--set", "train.batch_size=8", "--set", "parallel.balance=false")
    assert fixed["batch_per_rank"] == 4 and items(fixed)["logits"] == one["logits"]


def test_a_table_by_default_and_bad_layouts_are_one_error():
    r = run_est("plan", "--config", GPT2_124M, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "attention maps" in r.stdout and "model.seq_len, train.batch_size" in r.stdout
    assert r.stdout.strip().splitlines()[-1].split()[0] == "total"
    r = run_est("plan", "--config", GPT2_124M, "--set", "parallel.tp=2", "--ranks", "3", cwd=REPO)
    assert r.returncode == 2 and r.stderr.startswith("est: error: --ranks: 3 ranks do not split"), r.stderr
    r = run_est("plan", "--config", GPT2_124M, "--set", "parallel.tp=5", cwd=REPO)
    assert r.returncode == 2 and "parallel.tp: must divide model.n_head (12)" in r.stderr, r.stderr


def test_a_run_that_cannot_fit_is_refused_before_it_allocates(workspace):
    tmp, config, _ = workspace
    r = run_est("train", "--config", config, *HUGE, "--set", "data.val=")  # the validation shard is too short
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"est: error: {config}: does not fit in memory: it needs "), r.stderr
    assert "the largest item is attention maps" in lines[0]
    assert "shrink it with model.seq_len, train.batch_size, parallel.tp or model.attention" in lines[0]
    assert not (tmp / "out").exists()  # refused before the run directory was made


def test_every_rank_refuses_alike_under_mpirun(workspace):
    _, config, _ = workspace
    r = mpirun(2, "train", "--config", config, *HUGE, "--set", "data.val=", "--set", "parallel.tp=2", timeout=120)
    assert r.returncode == 2, r.stderr
    ours = [l for l in r.stderr.splitlines() if l.startswith("est: ")]
    assert len(ours) == 1 and "its 2 ranks on this node need" in ours[0], r.stderr


def test_the_banner_shows_the_planned_total(workspace):
    _, config, _ = workspace
    r = run_est("train", "--config", config)
    assert r.returncode == 0, r.stderr
    assert "\nest: memory: " in r.stdout and " per rank planned (largest: " in r.stdout


def test_bench_holds_the_plan_against_the_measured_peak(workspace):
    _, config, _ = workspace
    # The quickstart's shape. What the plan cannot see (pages the allocator and the libraries touch after it is
    # made, 15-25 MiB on Kokkos 4 OpenMP) is a few percent of it; a much smaller model would read lower.
    r = run_est("bench", "--config", config, "--steps", "1", "--set", "model.n_layer=4", "--set", "model.n_embd=256",
                "--set", "model.n_head=4", "--set", "model.seq_len=128", "--set", "train.batch_size=16")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["memory_plan"]["total_bytes"] > 250e6
    assert 0.85 <= j["planned_to_peak_rss"] <= 1.15, (j["planned_mib"], j["peak_rss_mib"])


def test_simulate_holds_each_point_against_the_clusters_gpus():
    r = run_est("simulate", "--config", GPT2_124M, "--cluster", H100, "--json", "--set", "train.batch_size=32", cwd=REPO)
    assert r.returncode == 0, r.stderr
    memory = json.loads(r.stdout)["points"][0]["memory"]
    assert memory["fits"] is True and memory["memory_per_rank"] == 80e9
    r = run_est("simulate", "--config", GPT2_124M, "--cluster", H100, *HUGE, "--set", "train.batch_size=64", cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "of kernel buffers per rank, 80.00 GB per rank on the cluster: does not fit (largest: attention maps" in r.stdout
