"""The reports of scripts/gpu-check, in Python's standard library plus h5py (on this machine Debian's, on the GPU
machine its image's):

  gpu_check.py losses TRACE.h5                      per-step training losses of a run, as JSON
  gpu_check.py compare CPU_LOSSES.json TRACE.h5     the GPU run's losses against the CPU build's, step by step
  gpu_check.py bench BENCH.json...                  est bench's JSON as Markdown tables; for several runs (one
                                                    per GEMM precision), their speeds side by side as well

compare exits 1 when a step differs by more than RTOL (relative, default 1e-4) or the steps differ.
"""
import argparse
import json
import sys

# fp32 on both sides (cuBLAS in pedantic FP32, no TF32), in other summation orders. The CPU builds' 20 quickstart
# losses agree to float32 precision (oneDNN against CBLAS, Kokkos Serial against OpenMP on 2 threads), so 1e-4
# leaves room for the GPU's orders while a wrong kernel shows. (Rounding to TF32 would not: on the CPU it moved
# these losses by 1.5e-5 at most; the tf32 and bf16 runs have their own tolerances, see scripts/gpu-check.)
DEFAULT_RTOL = 1e-4


def trace_losses(path):
    import h5py

    with h5py.File(path, "r") as f:
        return [float(x) for x in f["loss"][:]]


def compare_losses(cpu, gpu, rtol=DEFAULT_RTOL):
    """(ok, Markdown lines): each step's CPU and GPU loss and their relative difference."""
    lines = ["| step | CPU loss | GPU loss | relative difference |", "|---|---|---|---|"]
    if len(cpu) != len(gpu):
        return False, lines + [f"| - | {len(cpu)} steps | {len(gpu)} steps | the runs differ in length |"]
    worst = 0.0
    for step, (c, g) in enumerate(zip(cpu, gpu), start=1):
        rel = abs(g - c) / abs(c)
        worst = max(worst, rel)
        lines.append(f"| {step} | {c:.6f} | {g:.6f} | {rel:.2e} |")
    ok = worst <= rtol
    lines.append("")
    lines.append(f"largest relative difference {worst:.2e} over {len(cpu)} steps, tolerance {rtol:.0e}: "
                 f"{'PASS' if ok else 'FAIL'}")
    return ok, lines


def bench_table(bench):
    """est bench's JSON as Markdown: the run, then one row per stage and the full model."""
    shape = bench["shape"]
    lines = [f"est bench: GPT-2 L={shape['n_layer']} H={shape['n_head']} C={shape['n_embd']} "
             f"T={shape['seq_len']} B={shape['batch_size']}, {bench.get('kokkos', '?')}, "
             f"GEMM {bench['gemm_backend']} {bench['precision']}, schedule {bench['schedule'] or 'none'}",
             "",
             "| stage | p_heads | p_mlp | p_layers | step (s) | time / full | FLOPs / full | tokens/s |",
             "|---|---|---|---|---|---|---|---|"]
    tokens = bench["tokens_per_second"] * bench["step_seconds"]
    for s in bench["stages"]:
        full = s["p_heads"] == s["p_mlp"] == s["p_layers"] == 1
        name = "full model" if s["stage"] == 0 else f"{s['stage']}{' (full)' if full else ''}"
        lines.append(f"| {name} | {s['p_heads']:g} | {s['p_mlp']:g} | {s['p_layers']:g} | {s['step_seconds']:.4f} | "
                     f"{s['time_ratio']:.3f} | {s['flops_ratio']:.3f} | {tokens / s['step_seconds']:.0f} |")
    lines.append("")
    lines.append(f"full model: {bench['tokens_per_second']:.0f} tokens/s, {bench['achieved_gflops']:.0f} GFLOP/s "
                 f"achieved, GEMM {bench['gemm_gflops']:.0f} GFLOP/s at {bench['gemm_shape']}, "
                 f"gemm_fraction {bench['gemm_fraction']:.2f}, peak RSS {bench['peak_rss_mib']:.0f} MiB")
    return lines


def precision_table(benches):
    """The full model's speed at each run's GEMM precision, against the first run's."""
    first = benches[0]
    lines = ["| precision | tokens/s | step (s) | GEMM GFLOP/s | tokens/s against " + first["precision"] + " |",
             "|---|---|---|---|---|"]
    for b in benches:
        lines.append(f"| {b['precision']} | {b['tokens_per_second']:.0f} | {b['step_seconds']:.4f} | "
                     f"{b['gemm_gflops']:.0f} | {b['tokens_per_second'] / first['tokens_per_second']:.2f} |")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(prog="gpu_check.py", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("losses").add_argument("trace")
    c = sub.add_parser("compare")
    c.add_argument("cpu_losses")
    c.add_argument("trace")
    c.add_argument("--rtol", type=float, default=DEFAULT_RTOL)
    sub.add_parser("bench").add_argument("bench_json", nargs="+")
    a = p.parse_args(argv)
    if a.command == "losses":
        print(json.dumps(trace_losses(a.trace)))
        return 0
    if a.command == "compare":
        with open(a.cpu_losses) as f:
            ok, lines = compare_losses(json.load(f), trace_losses(a.trace), a.rtol)
        print("\n".join(lines))
        return 0 if ok else 1
    benches = []
    for path in a.bench_json:
        with open(path) as f:
            benches.append(json.load(f))
    tables = [bench_table(b) for b in benches]
    if len(benches) > 1:
        tables.append(precision_table(benches))
    print("\n\n".join("\n".join(t) for t in tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
