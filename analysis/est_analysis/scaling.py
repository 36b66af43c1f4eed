"""Scaling efficiency of a study's points against its smallest one (fewest nodes, t1 and N1):
strong scaling (same global batch) E = (t1 * N1) / (tN * N); weak scaling (same batch per rank) E = t1 / tN,
t being a point's mean step time."""


def efficiencies(mode, nodes, step_seconds):
    """Per point, in the given order; None for a point, or every point, without a time."""
    first = min(range(len(nodes)), key=lambda i: nodes[i])
    t1, n1 = step_seconds[first], nodes[first]
    if t1 is None:
        return [None] * len(nodes)
    if mode == "strong":
        return [None if t is None else (t1 * n1) / (t * n) for t, n in zip(step_seconds, nodes)]
    return [None if t is None else t1 / t for t in step_seconds]
