"""A run's validation curve from its trace: at every step that validated, the cumulative training FLOPs and
training time (the sum of the step times so far, so validation itself costs nothing) and the loss; and where on
it the run first reaches a loss."""
import numpy as np

from .errors import AnalysisError


class ValidationCurve:
    def __init__(self, trace):
        rows = np.isfinite(trace["val_loss"])
        if not rows.any():
            raise AnalysisError(trace.path, "val_loss", "the run never validated (train.eval_every)")
        self.step = trace["step"][rows]
        self.flops = trace["flops_cumulative"][rows].astype(float)
        self.seconds = np.cumsum(trace.step_seconds)[rows]
        self.loss = trace["val_loss"][rows].astype(float)
        # Costs are the whole run's, not the last validation's: steps after it were trained too.
        self.total_flops = float(trace["flops_cumulative"][-1])
        self.total_seconds = float(trace.step_seconds.sum())

    @property
    def final_loss(self):
        return float(self.loss[-1])

    def reach(self, target, x):
        """The x (self.flops or self.seconds) at which the loss first comes down to `target`, linear in (x, loss)
        between the validations before and after; the first validation's x if it is already there; None if the
        run never gets there."""
        below = np.flatnonzero(self.loss <= target)
        if not len(below):
            return None
        i = below[0]
        if i == 0:
            return float(x[0])
        x0, x1, l0, l1 = x[i - 1], x[i], self.loss[i - 1], self.loss[i]
        return float(x0 + (target - l0) * (x1 - x0) / (l1 - l0))
