"""matplotlib without a display, and the one way the report saves a figure."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

DPI = 110


def figure(rows=1, cols=1, width=6.4, height=3.6):
    """A figure of rows x cols panels, each about width x height inches; always a 2-D array of axes."""
    return plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)


def save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
