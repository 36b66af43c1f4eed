"""A scaling study and the efficiency of its points against its smallest one (fewest nodes, t1 and N1):
strong scaling (same global batch) E = (t1 * N1) / (tN * N); weak scaling (same batch per rank) E = t1 / tN,
t being a point's mean step time."""
from .manifest import Manifest
from .trace import Trace


def efficiencies(mode, nodes, step_seconds):
    """Per point, in the given order; None for a point, or every point, without a time."""
    first = min(range(len(nodes)), key=lambda i: nodes[i])
    t1, n1 = step_seconds[first], nodes[first]
    if t1 is None:
        return [None] * len(nodes)
    if mode == "strong":
        return [None if t is None else (t1 * n1) / (t * n) for t, n in zip(step_seconds, nodes)]
    return [None if t is None else t1 / t for t in step_seconds]


class Study:
    """A scaling study: its manifest, a trace per point, and the efficiency of each point."""

    def __init__(self, path):
        self.manifest = Manifest(path)
        points = self.manifest.points
        self.traces = [Trace(p.trace_path, name=f"nodes={p.nodes}, ranks={p.ranks}") for p in points]
        nodes = [p.nodes for p in points]
        self.step_seconds = [float(t.step_seconds.mean()) for t in self.traces]
        self.measured = efficiencies(self.manifest.mode, nodes, self.step_seconds)
        self.simulated = efficiencies(self.manifest.mode, nodes, [p.simulated_step_seconds for p in points])
