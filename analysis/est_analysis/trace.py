"""Reading a trace.h5 (schema: the header comment of src/io/trace_writer.cpp) into numpy arrays, and the
per-step figures the plots and tables share."""
from pathlib import Path

import h5py
import numpy as np

from .errors import AnalysisError

# 2 added dp_reduce_seconds and dp_exposed_seconds (the data-parallel gradient sum, all and unhidden).
FORMAT_VERSIONS = (1, 2)
# The datasets the analysis reads; a trace without one of them is refused.
DATASETS = ("step", "stage", "active_layers", "active_heads", "active_neurons", "flops", "flops_cumulative",
            "flops_full", "loss", "val_loss", "tokens", "compute_seconds", "comm_seconds", "wait_seconds",
            "dp_bytes", "tp_bytes")
# Read where the trace has them (format 2).
OPTIONAL_DATASETS = ("dp_reduce_seconds", "dp_exposed_seconds")
# The model shape, for the parameter counts of the active heads and neurons.
SHAPE = ("n_head", "n_embd")
# Written since Llama; a trace from before is GPT-2's, whose values these are.
OPTIONAL_SHAPE = {"arch": lambda shape: "gpt2", "n_kv_head": lambda shape: shape["n_head"],
                  "mlp_hidden": lambda shape: 4 * shape["n_embd"]}


def trace_path(path):
    """A trace.h5, or the run directory holding one."""
    path = Path(path)
    if path.is_dir():
        path = path / "trace.h5"
    if not path.is_file():
        raise AnalysisError(path, None, "no such file (is it a run directory with a trace?)")
    return path


class Trace:
    """One run's trace. `name` labels it in plots and tables: its run directory's name."""

    def __init__(self, path, name=None):
        self.path = trace_path(path)
        self.name = name or self.path.parent.name or str(self.path)
        try:
            # SWMR, so a running job's trace can be read too: the rows written so far.
            with h5py.File(self.path, "r", libver="latest", swmr=True) as f:
                self._check_kind(f)
                self.data = {key: self._dataset(f, key) for key in DATASETS}
                self.data.update({key: np.asarray(f[key][...]) for key in OPTIONAL_DATASETS if key in f})
                self.shape = {key: self._int_attribute(f, key) for key in SHAPE}
                for key, default in OPTIONAL_SHAPE.items():
                    value = f.attrs.get(key)
                    if value is None:
                        value = default(self.shape)
                    self.shape[key] = value.decode() if isinstance(value, bytes) else (
                        value if isinstance(value, str) else int(value))
        except OSError as e:
            raise AnalysisError(self.path, None, f"not a readable HDF5 file ({e})")
        # A running job's datasets may be caught mid-append: the rows every dataset holds.
        rows = min(len(v) for v in self.data.values())
        if rows == 0:
            raise AnalysisError(self.path, "step", "no rows")
        self.data = {key: values[:rows] for key, values in self.data.items()}

    def _missing(self, key):
        raise AnalysisError(self.path, key, "missing")

    def _check_kind(self, f):
        if f.attrs.get("est_kind") not in ("trace", b"trace"):
            raise AnalysisError(self.path, "/@est_kind", "not an est trace")
        if f.attrs.get("format_version") not in FORMAT_VERSIONS:
            raise AnalysisError(self.path, "/@format_version",
                                f"{f.attrs.get('format_version')} is not one of the supported "
                                f"{', '.join(map(str, FORMAT_VERSIONS))}")

    def _int_attribute(self, f, key):
        if key not in f.attrs:
            self._missing(f"/@{key}")
        return int(f.attrs[key])

    def _dataset(self, f, key):
        if key not in f:
            self._missing(key)
        return np.asarray(f[key][...])

    def __getitem__(self, key):
        return self.data[key]

    @property
    def arch(self):
        return self.shape["arch"]

    @property
    def ranks(self):
        return self["compute_seconds"].shape[1]

    @property
    def step_seconds(self):
        """Each step's time: the slowest rank's computing, communicating and waiting. Validation, start-up and
        trace writing are left out, as the summary's train_seconds leaves them out."""
        return (self["compute_seconds"] + self["comm_seconds"] + self["wait_seconds"]).max(axis=1)

    @property
    def has_gradient_sums(self):
        """Whether the trace times a data-parallel gradient sum: format 2, with several replicas."""
        return "dp_reduce_seconds" in self.data and bool((self["dp_reduce_seconds"] > 0).any())

    @property
    def gradient_sum_seconds(self):
        """Per step, the mean rank's data-parallel gradient sum: (its own seconds, the part the backward pass did
        not hide). None without one."""
        if not self.has_gradient_sums:
            return None
        return self["dp_reduce_seconds"].mean(axis=1), self["dp_exposed_seconds"].mean(axis=1)

    @property
    def imbalance(self):
        """Per step: the slowest rank's compute time over the mean rank's (1 on one rank), as the trainer logs."""
        compute = self["compute_seconds"]
        mean = compute.mean(axis=1)
        return np.where(mean > 0, compute.max(axis=1) / np.where(mean > 0, mean, 1), 1.0)

    @property
    def stage_boundaries(self):
        """The first step of every stage after the first."""
        stage = self["stage"]
        return self["step"][1:][stage[1:] != stage[:-1]]
