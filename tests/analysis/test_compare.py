"""`est-analysis compare` on a real quality study of a tiny model: a full-model baseline and EST at two seeds, a
compute-matched EST run, one that cannot learn (learning rate 1e-6), a failed and a pending run. The manifest is
written here in `est study`'s schema; every figure of the table is recomputed from the traces with h5py."""
import json
import math
import struct

import h5py
import numpy as np
import pytest
from conftest import est_analysis, tiny_config, train

T_975_DF1 = 12.7062  # two seeds: one degree of freedom
# The EST schedule saves 29% of this model's FLOPs at 30 steps: 42 steps spend about the baseline's 30.
MATCHED_STEPS = 42
# (point, variant, seed, schedule, overrides); run at 30 steps unless the overrides say otherwise.
RUNS = [
    ("full-s1", "full", 1, "full.yaml", []),
    ("full-s2", "full", 2, "full.yaml", []),
    ("est-s1", "gpt2-est", 1, "gpt2-est.yaml", []),
    ("est-s2", "gpt2-est", 2, "gpt2-est.yaml", []),
    ("matched-s1", "gpt2-est-matched", 1, "gpt2-est.yaml", [f"train.steps={MATCHED_STEPS}"]),
    ("slow-s1", "slow", 1, "full.yaml", ["train.lr=1e-6", "train.min_lr=0"]),
]
NOT_RUN = [("matched-s2", "gpt2-est-matched", 2, "failed"), ("later-s1", "later", 1, "pending")]
VARIANTS = [("full", False), ("gpt2-est", False), ("gpt2-est-matched", True), ("slow", False), ("later", False)]


def point(name, variant, seed, status):
    return {"name": name, "variant": variant, "seed": seed, "steps": 30, "output_dir": name,
            "trace": f"{name}/trace.h5", "summary": f"{name}/summary.json", "log": f"{name}.log",
            "status": status, "exit_status": 0 if status == "done" else None}


def manifest_doc():
    variants = [{"name": name, "schedule": "/schedules/x.yaml", "set": [], "compute_matched": matched, "steps": 30,
                 "flops": 1.0, "flops_full": 1.0, "saving": 0.0} for name, matched in VARIANTS]
    points = ([point(name, variant, seed, "done") for name, variant, seed, _, _ in RUNS] +
              [point(*p) for p in NOT_RUN])
    return {"kind": "est-study", "format_version": 1, "spec": "/study.yaml", "config": "config.yaml",
            "created": "2026-12-01T23:59:00Z", "baseline": "full", "seeds": [1, 2], "variants": variants,
            "points": points}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The study's folder: manifest.json and a run directory per done point."""
    tmp = tmp_path_factory.mktemp("quality")
    config = tiny_config(tmp)
    folder = tmp / "study"
    folder.mkdir()
    for name, _, seed, schedule, overrides in RUNS:
        train(config, folder / name, schedule, overrides=[f"train.seed={seed}", *overrides])
    (folder / "manifest.json").write_text(json.dumps(manifest_doc(), indent=2))
    return folder


@pytest.fixture(scope="module")
def compared(study):
    """The command's result and its output folder, the default one beside the manifest."""
    r = est_analysis("compare", study / "manifest.json")
    assert r.returncode == 0, r.stderr
    return r, study / "compare"


class Run:
    """A run's validation curve and costs straight from its trace."""

    def __init__(self, directory):
        with h5py.File(directory / "trace.h5", "r") as f:
            d = {k: f[k][...] for k in ("val_loss", "flops_cumulative", "compute_seconds", "comm_seconds",
                                        "wait_seconds")}
        seconds = np.cumsum((d["compute_seconds"] + d["comm_seconds"] + d["wait_seconds"]).max(axis=1))
        validated = ~np.isnan(d["val_loss"])
        self.loss = d["val_loss"][validated]
        self.flops = d["flops_cumulative"][validated]
        self.seconds = seconds[validated]
        self.total_flops, self.total_seconds = d["flops_cumulative"][-1], seconds[-1]
        self.final = float(self.loss[-1])


def runs_of(study, variant):
    return {seed: Run(study / name) for name, v, seed, _, _ in RUNS if v == variant}


def first_reach(losses, xs, target):
    """Walk the validations; between the last one above the target and the first at or below it, linearly."""
    previous = None
    for loss, x in zip(losses, xs):
        if loss <= target:
            if previous is None:
                return float(x)
            before_loss, before_x = previous
            return float(before_x + (x - before_x) * (before_loss - target) / (before_loss - loss))
        previous = (loss, x)
    return None


def table(markdown):
    """The comparison table: {variant: {column: cell}}."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| variant |"))
    cells = lambda line: [c.strip() for c in line.strip().strip("|").split("|")]
    header = cells(lines[start])
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        row = cells(line)
        rows[row[0]] = dict(zip(header, row))
    return rows


def close(cell, value):
    """The cell shows `value` to the cell's precision ("+0.1234", "29.0%", "0.887 (1/2 seeds)")."""
    text = cell.split()[0]
    scale = 100 if text.endswith("%") else 1
    digits = text.rstrip("%")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return abs(float(digits) / scale - value) <= 0.51 * 10.0 ** -decimals / scale + 1e-12


def numbers(compared):
    doc = json.loads((compared[1] / "compare.json").read_text())
    return doc, {v["variant"]: v for v in doc["variants"]}


def rows(compared):
    return table((compared[1] / "compare.md").read_text())


def test_prints_the_table_and_writes_the_folder(compared):
    r, out = compared
    assert r.stdout.endswith(f"est-analysis: wrote {out}\n")
    printed = r.stdout[:-len(f"est-analysis: wrote {out}\n")]
    assert printed.strip() in (out / "compare.md").read_text()
    assert list(table(printed)) == [name for name, _ in VARIANTS]
    assert sorted(p.name for p in out.iterdir()) == ["compare.json", "compare.md", "val_loss_vs_flops.png",
                                                     "val_loss_vs_time.png"]


def test_runs_not_done_are_one_warning(compared):
    assert compared[0].stderr == ("est-analysis: warning: 2 run(s) not done, left out: matched-s2 (failed), "
                                  "later-s1 (pending)\n")


def test_figures_are_small_pngs(compared):
    for name in ("val_loss_vs_flops.png", "val_loss_vs_time.png"):
        data = (compared[1] / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", data[16:24])
        assert 500 <= width <= 800 and 350 <= height <= 550, (width, height)
    assert "band" in (compared[1] / "compare.md").read_text()


def test_paired_difference_and_its_interval(compared, study):
    base, est = runs_of(study, "full"), runs_of(study, "gpt2-est")
    differences = [est[s].final - base[s].final for s in (1, 2)]
    mean = sum(differences) / 2
    half = T_975_DF1 * abs(differences[0] - differences[1]) / math.sqrt(2) / math.sqrt(2)
    _, by_name = numbers(compared)
    got = by_name["gpt2-est"]["difference"]
    assert got["pairs"] == 2
    assert got["mean"] == pytest.approx(mean, rel=1e-9)
    assert (got["low"], got["high"]) == pytest.approx((mean - half, mean + half), rel=1e-9)
    row = rows(compared)["gpt2-est"]
    assert close(row["Δ val loss vs baseline"], mean)
    low, high = row["95% CI"].strip("[]").split(", ")
    assert close(low, mean - half) and close(high, mean + half)
    assert close(row["final val loss"], (est[1].final + est[2].final) / 2)


def test_the_verdict_follows_the_interval(compared, study):
    _, by_name = numbers(compared)
    d = by_name["gpt2-est"]["difference"]
    verdict = by_name["gpt2-est"]["verdict"]
    if d["low"] <= 0 <= d["high"]:
        assert verdict.startswith("matches the baseline within noise")
    else:
        assert verdict.startswith(f"{'worse' if d['mean'] > 0 else 'better'} by {abs(d['mean']):.4f}")
    assert f"- gpt2-est: {verdict}" in compared[0].stdout


def test_one_seed_has_no_interval(compared, study):
    row = rows(compared)["gpt2-est-matched"]
    assert row["seeds done"] == "1/2"
    assert row["95% CI"] == "n/a"
    difference = runs_of(study, "gpt2-est-matched")[1].final - runs_of(study, "full")[1].final
    assert close(row["Δ val loss vs baseline"], difference)
    assert numbers(compared)[1]["gpt2-est-matched"]["verdict"].endswith("no interval to judge the noise by")


@pytest.mark.parametrize("variant", ["gpt2-est", "gpt2-est-matched", "slow"])
def test_savings(compared, study, variant):
    base, runs = runs_of(study, "full").values(), runs_of(study, variant).values()
    mean = lambda values: sum(values) / len(values)
    flops_ratio = mean([r.total_flops for r in runs]) / mean([r.total_flops for r in base])
    time_saving = 1 - mean([r.total_seconds for r in runs]) / mean([r.total_seconds for r in base])
    _, by_name = numbers(compared)
    assert by_name[variant]["flops_saving"] == pytest.approx(1 - flops_ratio, abs=1e-12)
    assert by_name[variant]["time_saving"] == pytest.approx(time_saving, abs=1e-12)
    row = rows(compared)[variant]
    assert close(row["FLOPs saving"], 1 - flops_ratio) and close(row["time saving"], time_saving)
    matched = "yes" if variant == "gpt2-est-matched" else "no"
    assert row["compute-matched"] == f"{matched} ({flops_ratio:.2f}× FLOPs)"


def test_est_saves_flops_and_the_matched_run_spends_the_baselines(compared):
    _, by_name = numbers(compared)
    assert by_name["gpt2-est"]["flops_saving"] > 0.2
    assert by_name["gpt2-est-matched"]["flops_ratio"] == pytest.approx(1, abs=0.05)


@pytest.mark.parametrize("variant", ["full", "gpt2-est", "gpt2-est-matched"])
@pytest.mark.parametrize("cost", ["flops", "seconds"])
def test_cost_to_the_baselines_loss(compared, study, variant, cost):
    base = runs_of(study, "full").values()
    target = sum(r.final for r in base) / len(base)
    base_total = sum(getattr(r, f"total_{cost}") for r in base) / len(base)
    runs = runs_of(study, variant)
    reached = [first_reach(r.loss, getattr(r, cost), target) for r in runs.values()]
    reached = [x for x in reached if x is not None]
    doc, by_name = numbers(compared)
    assert doc["target_val_loss"] == pytest.approx(target, rel=1e-12)
    got = by_name[variant]["flops_to_baseline_loss" if cost == "flops" else "time_to_baseline_loss"]
    assert (got["reached"], got["seeds"]) == (len(reached), len(runs))
    cell = rows(compared)[variant]["FLOPs to baseline loss" if cost == "flops" else "time to baseline loss"]
    if reached:
        fraction = sum(reached) / len(reached) / base_total
        assert got["fraction"] == pytest.approx(fraction, rel=1e-9)
        assert close(cell, fraction) and cell.endswith(f"({len(reached)}/{len(runs)} seeds)")
    else:
        assert got["fraction"] is None and cell == "not reached"


def test_the_matched_run_reaches_the_baselines_loss_between_validations(compared, study):
    """So the interpolation, not a validation's own FLOPs, is what the test above checks."""
    run = runs_of(study, "gpt2-est-matched")[1]
    got = numbers(compared)[1]["gpt2-est-matched"]["runs"][0]["flops_to_baseline_loss"]
    assert got is not None and got not in run.flops.tolist()
    assert run.flops[0] < got < run.flops[-1]


def test_a_run_that_cannot_learn_never_reaches_the_baselines_loss(compared):
    row = rows(compared)["slow"]
    assert row["FLOPs to baseline loss"] == "not reached" and row["time to baseline loss"] == "not reached"


def test_a_variant_without_a_done_run_is_reported_as_such(compared):
    row = rows(compared)["later"]
    assert row["seeds done"] == "0/1"
    assert set(row.values()) - {"later", "0/1"} == {"n/a"}
    assert "- later: no done run" in compared[0].stdout


def edited(study, tmp_path, edit):
    """The study's manifest, edited, in tmp_path; traces by absolute path, so they still resolve there."""
    doc = manifest_doc()
    for p in doc["points"]:
        p["trace"] = str(study / p["trace"])
    edit(doc)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(doc))
    return path


def set_status(doc, variant, status):
    for p in doc["points"]:
        if p["variant"] == variant:
            p["status"] = status


BAD_MANIFESTS = {
    "another kind": (lambda d: d.update(kind="est-scaling-study"), "kind"),
    "another version": (lambda d: d.update(format_version=2), "format_version"),
    "no baseline": (lambda d: d.pop("baseline"), "baseline"),
    "a baseline that is not a variant": (lambda d: d.update(baseline="nonesuch"), "baseline"),
    "a baseline without a done run": (lambda d: set_status(d, "full", "running"), "baseline"),
    "a done point without its trace": (lambda d: d["points"][2].update(trace="gone/trace.h5"), "points[2].trace"),
    "a point of no variant": (lambda d: d["points"][0].update(variant="nonesuch"), "points[0].variant"),
    "a seed that is not an integer": (lambda d: d["points"][1].update(seed="2"), "points[1].seed"),
    "an unknown status": (lambda d: d["points"][1].update(status="finished"), "points[1].status"),
    "two done runs at a seed": (lambda d: d["points"][1].update(seed=1), "points[1]"),
}


@pytest.mark.parametrize("case", BAD_MANIFESTS)
def test_a_bad_manifest_is_one_error_and_writes_nothing(study, tmp_path, case):
    edit, key = BAD_MANIFESTS[case]
    manifest = edited(study, tmp_path, edit)
    r = est_analysis("compare", manifest)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"est-analysis: error: {manifest}: {key}: "), r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


def test_a_missing_manifest_is_an_error(tmp_path):
    r = est_analysis("compare", tmp_path / "manifest.json")
    assert r.returncode == 2
    assert r.stderr == f"est-analysis: error: {tmp_path / 'manifest.json'}: no such file\n"


def test_an_existing_folder_is_replaced_only_with_force(study, tmp_path):
    manifest, out = edited(study, tmp_path, lambda d: None), tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("an older comparison")
    r = est_analysis("compare", manifest, "--out", out)
    assert r.returncode == 2
    assert r.stderr == f"est-analysis: error: {out}: exists; pass --force to replace it\n"
    r = est_analysis("compare", manifest, "--out", out, "--force")
    assert r.returncode == 0, r.stderr
    assert "old.txt" not in [p.name for p in out.iterdir()] and (out / "compare.md").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "out"]


def test_a_variant_without_a_seed_in_common_with_the_baseline_has_no_difference(study, tmp_path):
    # The baseline keeps only seed 2; the compute-matched variant ran only seed 1.
    manifest = edited(study, tmp_path, lambda d: d["points"][0].update(status="failed"))
    r = est_analysis("compare", manifest)
    assert r.returncode == 0, r.stderr
    row = table(r.stdout)["gpt2-est-matched"]
    assert (row["Δ val loss vs baseline"], row["95% CI"]) == ("n/a", "n/a")
    assert "- gpt2-est-matched: no seed in common with the baseline" in r.stdout
    assert close(row["final val loss"], runs_of(study, "gpt2-est-matched")[1].final)


def test_another_variant_can_be_the_baseline(study, tmp_path):
    r = est_analysis("compare", study / "manifest.json", "--baseline", "gpt2-est", "--out", tmp_path / "vs-est")
    assert r.returncode == 0, r.stderr
    by_name = {row["variant"]: row for row in json.loads((tmp_path / "vs-est" / "compare.json").read_text())["variants"]}
    base, est = runs_of(study, "full"), runs_of(study, "gpt2-est")
    assert by_name["full"]["difference"]["mean"] == pytest.approx(
        sum(base[s].final - est[s].final for s in (1, 2)) / 2, rel=1e-9)
    r = est_analysis("compare", study / "manifest.json", "--baseline", "nope", "--out", tmp_path / "none")
    assert r.returncode == 2 and "--baseline: 'nope' is not one of the variants" in r.stderr
    assert not (tmp_path / "none").exists()
