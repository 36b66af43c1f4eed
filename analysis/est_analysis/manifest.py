"""Reading the manifest.json of a scaling study (written by `est jobs scaling`); paths in it are relative to
the manifest's directory."""
import json
from pathlib import Path

from .errors import AnalysisError

KIND = "est-scaling-study"
FORMAT_VERSION = 1
MODES = ("strong", "weak")


class ScalingPoint:
    def __init__(self, nodes, ranks, trace_path, simulated_step_seconds):
        self.nodes, self.ranks = nodes, ranks
        self.trace_path = trace_path
        self.simulated_step_seconds = simulated_step_seconds  # None when the study has no simulation of it


class Manifest:
    def __init__(self, path):
        self.path = Path(path)
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            raise AnalysisError(self.path, None, "no such file")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise AnalysisError(self.path, None, f"not valid JSON ({e})")
        if not isinstance(doc, dict) or doc.get("kind") != KIND:
            raise AnalysisError(self.path, "kind", f"expected {KIND!r}")
        if self._key(doc, "format_version") != FORMAT_VERSION:
            raise AnalysisError(self.path, "format_version", f"{doc['format_version']!r} is not the supported "
                                f"{FORMAT_VERSION}")
        self.mode = self._key(doc, "mode")
        if self.mode not in MODES:
            raise AnalysisError(self.path, "mode", f"{self.mode!r} is not one of {', '.join(MODES)}")
        points = self._key(doc, "points")
        if not isinstance(points, list) or not points:
            raise AnalysisError(self.path, "points", "expected a non-empty list")
        self.points = [self._point(p, f"points[{i}]") for i, p in enumerate(points)]

    def _key(self, mapping, key, where=""):
        if not isinstance(mapping, dict) or key not in mapping:
            raise AnalysisError(self.path, f"{where}.{key}" if where else key, "missing")
        return mapping[key]

    def _count(self, point, key, where):
        value = self._key(point, key, where)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise AnalysisError(self.path, f"{where}.{key}", f"expected a positive integer, not {value!r}")
        return value

    def _point(self, point, where):
        trace = self.path.parent / str(self._key(point, "trace", where))
        if not trace.is_file():
            raise AnalysisError(self.path, f"{where}.trace", f"{trace}: no such file")
        return ScalingPoint(self._count(point, "nodes", where), self._count(point, "ranks", where), trace,
                            self._simulated_step_seconds(point, where))

    def _simulated_step_seconds(self, point, where):
        simulated = point.get("simulated")
        if simulated is None:
            return None
        seconds = self._key(self._key(simulated, "est", f"{where}.simulated"), "step_seconds",
                            f"{where}.simulated.est")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not seconds > 0:
            raise AnalysisError(self.path, f"{where}.simulated.est.step_seconds",
                                f"expected a positive number of seconds, not {seconds!r}")
        return float(seconds)
