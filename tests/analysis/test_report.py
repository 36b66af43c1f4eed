"""`est-analysis report` on real traces: the plots are valid PNGs, report.md's figures are the ones the traces
give (recomputed here with h5py), a scaling manifest gives the efficiencies, and bad input is one error, status 2,
with nothing written."""
import json
import os
import struct

import h5py
import numpy as np
import pytest
from conftest import est_analysis
from matplotlib.image import imread

PLOTS = ["loss_vs_flops.png", "loss_vs_time.png", "subnetwork_size.png", "imbalance.png", "communication.png"]


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report"
    r = est_analysis("report", runs["est"], runs["mpi"] / "trace.h5", "--baseline", runs["baseline"], "--out", out)
    assert r.returncode == 0, r.stderr
    return out


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, chunk, width, height = struct.unpack(">I4sII", data[8:24])
    assert chunk == b"IHDR" and length == 13
    assert width > 0 and height > 0
    assert imread(path).shape[:2] == (height, width)


def table(markdown, first_cell):
    """The markdown table whose header starts with `first_cell`: (column names, {row label: cells})."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_cell} |"))
    cells = lambda line: [c.strip() for c in line.strip().strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(cells(line))
    return cells(lines[start])[1:], {row[0]: row[1:] for row in rows}


def number(cell):
    return float(cell.rstrip("%")) / 100 if cell.endswith("%") else float(cell)


def close(cell, value):
    """The cell shows `value` to the cell's precision."""
    digits = cell.rstrip("%").lstrip("+-")
    decimals = len(digits.split(".")[1].split("e")[0]) if "." in digits else 0
    scale = 100 if cell.endswith("%") else 1
    return abs(number(cell) - value) <= 0.51 * 10.0 ** -decimals / scale + 1e-12


class Recomputed:
    """A run's figures straight from its trace."""

    def __init__(self, run):
        with h5py.File(run / "trace.h5", "r") as f:
            d = {k: f[k][...] for k in f}
        self.flops = d["flops_cumulative"][-1]
        self.flops_saved_vs_full = 1 - d["flops"].sum() / d["flops_full"].sum()
        self.seconds = (d["compute_seconds"] + d["comm_seconds"] + d["wait_seconds"]).max(axis=1).sum()
        self.tokens_per_second = d["tokens"][-1] / self.seconds
        self.final_loss = float(d["loss"][-1])
        self.final_val = float(d["val_loss"][np.isfinite(d["val_loss"])][-1])
        self.step_seconds = self.seconds / len(d["step"])


def test_every_plot_is_a_valid_png(report):
    for name in PLOTS:
        assert_png(report / name)
    assert not (report / "scaling.png").exists()
    assert sorted(p.name for p in report.iterdir()) == sorted(PLOTS + ["report.md"])


def test_report_links_every_plot(report):
    text = (report / "report.md").read_text()
    for name in PLOTS:
        assert f"]({name})" in text


def test_report_figures_are_the_traces(report, runs):
    columns, rows = table((report / "report.md").read_text(), "figure")
    assert columns == ["est", "mpi", "full"]
    base = Recomputed(runs["baseline"])
    for column, run in ((0, runs["est"]), (1, runs["mpi"])):
        run = Recomputed(run)
        expected = {
            "FLOPs saved vs full model": run.flops_saved_vs_full,
            "FLOPs saved vs baseline": 1 - run.flops / base.flops,
            "time saved vs baseline": 1 - run.seconds / base.seconds,
            "final val loss delta vs baseline": run.final_val - base.final_val,
            "final train loss delta vs baseline": run.final_loss - base.final_loss,
            "tokens/s": run.tokens_per_second,
        }
        for label, value in expected.items():
            assert close(rows[label][column], value), (label, rows[label][column], value)
    # EST trains a subnetwork for two thirds of the run: it must save FLOPs against the full model.
    assert number(rows["FLOPs saved vs baseline"][0]) > 0.1
    assert rows["ranks"] == ["1", "2", "1"]


def test_the_gradient_sum_is_shown_against_its_exposed_part(report, runs):
    _, rows = table((report / "report.md").read_text(), "figure")
    with h5py.File(runs["mpi"] / "trace.h5", "r") as f:
        total = f["dp_reduce_seconds"][...].mean(axis=1).mean()
        exposed = f["dp_exposed_seconds"][...].mean(axis=1).mean()
    assert total > 0
    assert close(rows["gradient sum per step (s)"][1], total)
    assert close(rows["gradient sum exposed per step (s)"][1], exposed)
    assert close(rows["gradient sum hidden"][1], 1 - exposed / total)
    # One rank has no data-parallel sum.
    assert rows["gradient sum per step (s)"][0] == rows["gradient sum per step (s)"][2] == "n/a"


def test_a_trace_of_format_1_is_read_without_the_gradient_sum(runs, tmp_path):
    trace = tmp_path / "old" / "trace.h5"
    trace.parent.mkdir()
    trace.write_bytes((runs["mpi"] / "trace.h5").read_bytes())
    with h5py.File(trace, "a") as f:
        del f["dp_reduce_seconds"], f["dp_exposed_seconds"]
        f.attrs["format_version"] = 1
    r = est_analysis("report", trace, "--out", tmp_path / "report")
    assert r.returncode == 0, r.stderr
    _, rows = table((tmp_path / "report" / "report.md").read_text(), "figure")
    assert rows["gradient sum per step (s)"] == ["n/a"]
    assert rows["ranks"] == ["2"]


def write_manifest(path, runs, mode, simulated_seconds):
    points = [{"nodes": n, "ranks": n, "tp": 1, "dp": n, "global_batch": 2, "per_rank_batch": 2 // n,
               "script": f"n{n}.sbatch", "output_dir": os.path.relpath(run, path.parent),
               "trace": os.path.relpath(run / "trace.h5", path.parent), "log": f"n{n}.log",
               "simulated": None if s is None else {"est": {"step_seconds": s, "run_seconds": 30 * s,
                                                            "energy_joules": 1.0, "tokens_per_second": 1.0}}}
              for n, run, s in ((1, runs["est"], simulated_seconds[0]), (2, runs["mpi"], simulated_seconds[1]))]
    path.write_text(json.dumps({"kind": "est-scaling-study", "format_version": 1, "mode": mode,
                                "config": "tiny.yaml", "source_config": "tiny.yaml", "ranks_per_node": 1, "tp": 1,
                                "launcher": "srun", "time_limit": "00:10:00", "created": "2026-11-28T00:00:00Z",
                                "points": points}))
    return path


@pytest.mark.parametrize("mode", ["strong", "weak"])
def test_a_scaling_manifest_gives_the_efficiencies(runs, tmp_path, mode):
    (tmp_path / "study").mkdir()
    manifest = write_manifest(tmp_path / "study" / "manifest.json", runs, mode, (1.0, 0.625))
    r = est_analysis("report", manifest, "--out", tmp_path / "report")
    assert r.returncode == 0, r.stderr
    assert_png(tmp_path / "report" / "scaling.png")
    _, rows = table((tmp_path / "report" / "report.md").read_text(), "nodes")
    t1, t2 = Recomputed(runs["est"]).step_seconds, Recomputed(runs["mpi"]).step_seconds
    measured = t1 * 1 / (t2 * 2) if mode == "strong" else t1 / t2
    simulated = 1.0 * 1 / (0.625 * 2) if mode == "strong" else 1.0 / 0.625
    assert rows["1"][2] == "1.0000" and rows["1"][4] == "1.0000"
    assert close(rows["2"][1], t2)
    assert close(rows["2"][2], measured)
    assert close(rows["2"][4], simulated)


def test_a_point_without_simulation_has_no_simulated_efficiency(runs, tmp_path):
    manifest = tmp_path / "manifest.json"
    write_manifest(manifest, runs, "strong", (1.0, None))
    r = est_analysis("report", manifest, "--out", tmp_path / "report")
    assert r.returncode == 0, r.stderr
    _, rows = table((tmp_path / "report" / "report.md").read_text(), "nodes")
    assert rows["2"][3:] == ["n/a", "n/a"]


def without_dataset(runs, tmp_path, name):
    trace = tmp_path / "broken" / "trace.h5"
    trace.parent.mkdir()
    trace.write_bytes((runs["est"] / "trace.h5").read_bytes())
    with h5py.File(trace, "a") as f:
        del f[name]
    return trace


def without_attribute(runs, tmp_path, name):
    trace = without_dataset(runs, tmp_path, "lr")
    with h5py.File(trace, "a") as f:
        del f.attrs[name]
    return trace


def without_rows(runs, tmp_path):
    trace = without_dataset(runs, tmp_path, "lr")
    with h5py.File(trace, "a") as f:
        for dataset in f.values():
            dataset.resize(0, axis=0)
    return trace


def with_format(runs, tmp_path, version):
    trace = without_dataset(runs, tmp_path, "lr")
    with h5py.File(trace, "a") as f:
        f.attrs["format_version"] = version
    return trace


def not_hdf5(tmp_path):
    trace = tmp_path / "text" / "trace.h5"
    trace.parent.mkdir()
    trace.write_text("not a trace")
    return trace


def edited_manifest(runs, tmp_path, edit):
    path = write_manifest(tmp_path / "manifest.json", runs, "strong", (1.0, 0.5))
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    return path


BAD_INPUTS = {
    "missing trace": (lambda runs, tmp: tmp / "nowhere" / "trace.h5", lambda tmp: tmp / "nowhere" / "trace.h5",
                      None),
    "trace without flops": (lambda runs, tmp: without_dataset(runs, tmp, "flops"),
                            lambda tmp: tmp / "broken" / "trace.h5", "flops"),
    "trace without the model shape": (lambda runs, tmp: without_attribute(runs, tmp, "n_head"),
                                      lambda tmp: tmp / "broken" / "trace.h5", "/@n_head"),
    "trace without rows": (without_rows, lambda tmp: tmp / "broken" / "trace.h5", "step"),
    "trace of a later format": (lambda runs, tmp: with_format(runs, tmp, 3), lambda tmp: tmp / "broken" / "trace.h5",
                                "/@format_version"),
    "not an HDF5 file": (lambda runs, tmp: not_hdf5(tmp), lambda tmp: tmp / "text" / "trace.h5", None),
    "manifest of another kind": (lambda runs, tmp: edited_manifest(runs, tmp, lambda d: d.update(kind="other")),
                                 lambda tmp: tmp / "manifest.json", "kind"),
    "manifest of another version": (lambda runs, tmp: edited_manifest(runs, tmp,
                                                                      lambda d: d.update(format_version=2)),
                                    lambda tmp: tmp / "manifest.json", "format_version"),
    "manifest without a key": (lambda runs, tmp: edited_manifest(runs, tmp, lambda d: d["points"][1].pop("nodes")),
                               lambda tmp: tmp / "manifest.json", "points[1].nodes"),
    "point without its trace": (lambda runs, tmp: edited_manifest(
                                    runs, tmp, lambda d: d["points"][0].update(trace="gone/trace.h5")),
                                lambda tmp: tmp / "manifest.json", "points[0].trace"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_error_and_writes_nothing(runs, tmp_path, case):
    make, file, key = BAD_INPUTS[case]
    given = make(runs, tmp_path)
    before = sorted(tmp_path.rglob("*"))
    r = est_analysis("report", runs["est"], given, "--out", tmp_path / "report")
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1
    prefix = f"est-analysis: error: {file(tmp_path)}: " + (f"{key}: " if key else "")
    assert r.stderr.startswith(prefix), r.stderr
    assert sorted(tmp_path.rglob("*")) == before


def test_an_existing_report_is_replaced_only_with_force(runs, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "old.txt").write_text("an older report")
    r = est_analysis("report", runs["est"], "--out", out)
    assert r.returncode == 2
    assert r.stderr == f"est-analysis: error: {out}: exists; pass --force to replace it\n"
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    r = est_analysis("report", runs["est"], "--out", out, "--force")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(PLOTS + ["report.md"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_subnetwork_fractions_follow_the_schedule(runs):
    from est_analysis.plots.subnetwork import active_fractions
    from est_analysis.trace import Trace

    est, full = Trace(runs["est"]), Trace(runs["baseline"])
    for fraction in active_fractions(full).values():
        assert np.all(fraction == 1)
    fractions = active_fractions(est)
    stage = est["stage"]
    # Stage 1 keeps half the layers and, in them, half the heads and neurons; stage 3 is the full model.
    assert np.all(fractions["layers"][stage == 1] == 0.5)
    assert np.all(fractions["heads"][stage == 1] == 0.25) and np.all(fractions["neurons"][stage == 1] == 0.25)
    assert np.all((fractions["parameters"][stage == 1] > 0.25) & (fractions["parameters"][stage == 1] < 0.5))
    assert np.all(fractions["parameters"][stage == 3] == 1)


def test_a_llama_run_is_named_and_its_subnetwork_counted(runs, tmp_path):
    from est_analysis.plots.subnetwork import active_fractions, unit_parameters
    from est_analysis.trace import Trace

    llama = Trace(runs["llama"])
    assert llama.arch == "llama" and Trace(runs["est"]).arch == "gpt2"
    assert llama.shape["n_kv_head"] == 2 and llama.shape["mlp_hidden"] == 64
    # Per query head: q and projection rows, 2dC, and half its group's k and v rows, dC: C = 32, d = 8.
    assert unit_parameters(llama.shape) == (2 * 8 * 32 + 2 * 8 * 32 / 2, 3 * 32, 2 * 32)
    fractions = active_fractions(llama)
    stage = llama["stage"]
    # Stage 1: half the layers, in them one of the two KV groups (2 of 4 query heads) and half the neurons.
    assert np.all(fractions["heads"][stage == 1] == 0.25) and np.all(fractions["neurons"][stage == 1] == 0.25)
    assert np.all(fractions["parameters"][stage == 3] == 1)
    r = est_analysis("report", runs["llama"], "--out", tmp_path / "report")
    assert r.returncode == 0, r.stderr
    assert "| architecture | llama |" in (tmp_path / "report" / "report.md").read_text()
