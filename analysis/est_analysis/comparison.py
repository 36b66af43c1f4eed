"""The figures of a quality study, per variant against the baseline, from the traces of its done runs.

The difference in final validation loss pairs runs by seed (variant minus baseline at the same seed), which
removes the share of seed-to-seed noise the two have in common (same data order, same initialisation). Savings
compare means over seeds. "To baseline loss" is where a run's validation curve first comes down to the
baseline's mean final validation loss, as a fraction of the baseline's mean cost: below 1, the variant gets the
baseline's quality for less."""
from .errors import AnalysisError
from .interval import mean_interval
from .study import StudyManifest
from .trace import Trace
from .validation_curve import ValidationCurve


def mean(values):
    return sum(values) / len(values)


class VariantRuns:
    """A variant's done runs: seed -> validation curve, and how many runs the study planned."""

    def __init__(self, variant, points):
        self.name, self.compute_matched = variant.name, variant.compute_matched
        self.planned = len(points)
        self.names = {p.seed: p.name for p in points if p.done}
        self.curves = {p.seed: ValidationCurve(Trace(p.trace_path, name=p.name)) for p in points if p.done}


class Comparison:
    def __init__(self, manifest_path, baseline=None):
        self.manifest = StudyManifest(manifest_path, baseline)
        points = self.manifest.points
        self.not_done = [p for p in points if not p.done]
        self.variants = [VariantRuns(v, [p for p in points if p.variant == v.name])
                         for v in self.manifest.variants.values()]
        self.baseline = next(v for v in self.variants if v.name == self.manifest.baseline)
        base = list(self.baseline.curves.values())
        if not base:
            raise AnalysisError(self.manifest.path, "baseline", f"{self.baseline.name!r} has no done run")
        self.target = mean([c.final_loss for c in base])
        self.base_flops = mean([c.total_flops for c in base])
        self.base_seconds = mean([c.total_seconds for c in base])
        self.rows = [self._row(v) for v in self.variants]

    def _difference(self, runs):
        """The paired difference in final validation loss, over the seeds both have run; None without one."""
        seeds = sorted(runs.curves.keys() & self.baseline.curves.keys())
        if not seeds or runs is self.baseline:
            return None
        m, low, high = mean_interval([runs.curves[s].final_loss - self.baseline.curves[s].final_loss
                                      for s in seeds])
        return {"mean": m, "low": low, "high": high, "pairs": len(seeds)}

    def _to_target(self, runs, x_of, base_total):
        """Each run's cost to the target loss; their mean over the runs that reached it, over the baseline's."""
        costs = [c.reach(self.target, x_of(c)) for c in runs.curves.values()]
        reached = [c for c in costs if c is not None]
        return {"fraction": mean(reached) / base_total if reached else None, "reached": len(reached),
                "seeds": len(costs)}

    def _run(self, runs, seed):
        curve = runs.curves[seed]
        return {"name": runs.names[seed], "seed": seed, "final_val_loss": curve.final_loss,
                "flops": curve.total_flops, "seconds": curve.total_seconds,
                "flops_to_baseline_loss": curve.reach(self.target, curve.flops),
                "seconds_to_baseline_loss": curve.reach(self.target, curve.seconds)}

    def _row(self, runs):
        row = {"variant": runs.name, "baseline": runs is self.baseline, "compute_matched": runs.compute_matched,
               "seeds_done": len(runs.curves), "seeds_planned": runs.planned}
        if not runs.curves:
            return {**row, "verdict": "no done run"}
        curves = runs.curves.values()
        flops_ratio = mean([c.total_flops for c in curves]) / self.base_flops
        difference = self._difference(runs)
        return {**row,
                "final_val_loss": mean([c.final_loss for c in curves]),
                "difference": difference,
                "flops_ratio": flops_ratio,
                "flops_saving": 1 - flops_ratio,
                "time_saving": 1 - mean([c.total_seconds for c in curves]) / self.base_seconds,
                "flops_to_baseline_loss": self._to_target(runs, lambda c: c.flops, self.base_flops),
                "time_to_baseline_loss": self._to_target(runs, lambda c: c.seconds, self.base_seconds),
                "verdict": "the baseline" if runs is self.baseline else verdict(difference),
                "runs": [self._run(runs, s) for s in sorted(runs.curves)]}


def verdict(difference):
    """Lower loss is better; "within noise" when the 95% interval of the paired difference holds 0."""
    if difference is None:
        return "no seed in common with the baseline"
    d, low, high = difference["mean"], difference["low"], difference["high"]
    if low is None:
        return f"differs by {d:+.4f} on one seed: no interval to judge the noise by"
    interval = f"95% CI [{low:+.4f}, {high:+.4f}]"
    if low <= 0 <= high:
        return f"matches the baseline within noise (difference {d:+.4f}, {interval})"
    return f"{'worse' if d > 0 else 'better'} by {abs(d):.4f} ({interval})"
