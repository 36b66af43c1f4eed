"""Writing an output folder (a report, a comparison) whole or not at all: everything is written into a hidden
temporary folder beside it and renamed into place. An existing folder is replaced only with force (the old one
is renamed aside first and removed after), so an output is never mixed with an older one's files."""
import os
import shutil
import tempfile
from pathlib import Path

from .errors import AnalysisError


def write_folder(out, force, fill):
    """Call fill(folder) on an empty staging folder, then put it in place as `out`; returns out."""
    out = Path(out)
    if out.exists() and not (force and out.is_dir()):
        raise AnalysisError(out, None, "exists; pass --force to replace it" if out.is_dir() else
                            "exists and is not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        fill(staging)
        os.chmod(staging, 0o755)  # mkdtemp's folder is private; an output is not
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(staging, out)
            shutil.rmtree(old)
        else:
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
