"""Reading the manifest.json of a quality study (written by `est study`): variants of one training, each run at
several seeds, one of them the baseline the others are compared with. Paths in it are relative to the
manifest's directory. Only what `compare` uses is read, so keys added later do not break it."""
import json
from pathlib import Path

from .errors import AnalysisError

KIND = "est-study"
FORMAT_VERSION = 1
STATUSES = ("pending", "running", "done", "failed")


class Variant:
    def __init__(self, name, compute_matched):
        self.name, self.compute_matched = name, compute_matched


class StudyPoint:
    """One run of a variant at a seed; `trace_path` exists when the status is done."""

    def __init__(self, name, variant, seed, status, trace_path):
        self.name, self.variant, self.seed, self.status = name, variant, seed, status
        self.trace_path = trace_path

    @property
    def done(self):
        return self.status == "done"


class StudyManifest:
    def __init__(self, path, baseline=None):
        """`baseline`: a variant to compare with instead of the manifest's baseline (e.g. one EST schedule)."""
        self.path = Path(path)
        doc = self._document()
        if not isinstance(doc, dict) or doc.get("kind") != KIND:
            raise AnalysisError(self.path, "kind", f"expected {KIND!r}")
        if self._key(doc, "format_version") != FORMAT_VERSION:
            raise AnalysisError(self.path, "format_version", f"{doc['format_version']!r} is not the supported "
                                f"{FORMAT_VERSION}")
        variants = [self._variant(v, f"variants[{i}]") for i, v in enumerate(self._list(doc, "variants"))]
        self.variants = {v.name: v for v in variants}
        if len(self.variants) < len(variants):
            raise AnalysisError(self.path, "variants", "two variants have the same name")
        self.baseline = self._key(doc, "baseline") if baseline is None else baseline
        if self.baseline not in self.variants:
            raise AnalysisError(self.path, "baseline" if baseline is None else "--baseline",
                                f"{self.baseline!r} is not one of the variants")
        self.points = [self._point(p, f"points[{i}]") for i, p in enumerate(self._list(doc, "points"))]
        self._check_pairs()

    def _document(self):
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            raise AnalysisError(self.path, None, "no such file")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise AnalysisError(self.path, None, f"not valid JSON ({e})")

    def _key(self, mapping, key, where=""):
        if not isinstance(mapping, dict) or key not in mapping:
            raise AnalysisError(self.path, f"{where}.{key}" if where else key, "missing")
        return mapping[key]

    def _typed(self, mapping, key, where, kind, description):
        value = self._key(mapping, key, where)
        # bool is an int to Python; a seed of `true` is a mistake, not seed 1.
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise AnalysisError(self.path, f"{where}.{key}", f"expected {description}, not {value!r}")
        return value

    def _list(self, doc, key):
        value = self._key(doc, key)
        if not isinstance(value, list) or not value:
            raise AnalysisError(self.path, key, "expected a non-empty list")
        return value

    def _variant(self, variant, where):
        return Variant(self._typed(variant, "name", where, str, "a name"),
                       self._typed(variant, "compute_matched", where, bool, "true or false"))

    def _point(self, point, where):
        name = self._typed(point, "name", where, str, "a name")
        variant = self._typed(point, "variant", where, str, "a variant's name")
        if variant not in self.variants:
            raise AnalysisError(self.path, f"{where}.variant", f"{variant!r} is not one of the variants")
        seed = self._typed(point, "seed", where, int, "an integer seed")
        status = self._key(point, "status", where)
        if status not in STATUSES:
            raise AnalysisError(self.path, f"{where}.status", f"{status!r} is not one of {', '.join(STATUSES)}")
        trace = self.path.parent / self._typed(point, "trace", where, str, "a path")
        # A Slurm array's tasks leave the manifest as written: a run that wrote its summary is done.
        summary = point.get("summary")
        if isinstance(summary, str) and (self.path.parent / summary).is_file():
            status = "done"
        if status == "done" and not trace.is_file():
            raise AnalysisError(self.path, f"{where}.trace", f"{trace}: no such file")
        return StudyPoint(name, variant, seed, status, trace)

    def _check_pairs(self):
        """Differences pair runs by seed, so a variant may have only one done run per seed."""
        seen = set()
        for i, p in enumerate(self.points):
            if not p.done:
                continue
            if (p.variant, p.seed) in seen:
                raise AnalysisError(self.path, f"points[{i}]", f"a second done run of {p.variant!r} at seed {p.seed}")
            seen.add((p.variant, p.seed))
