"""The model's width and head count, from the effective configuration a trace stores in /@config.

The analysis needs two numbers of it, so it reads the `model:` mapping of that YAML (block or flow style, as
yaml-cpp emits it) instead of depending on a YAML library. Keys the configuration leaves out take est's defaults
(ModelConfig in src/config/config.hpp)."""
import re

from .errors import AnalysisError

DEFAULTS = {"n_head": 12, "n_embd": 768}


def _model_mapping(config_text):
    lines = config_text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"model:\s*(.*)$", line)
        if not match:
            continue
        rest = match.group(1).split("#")[0].strip()
        if rest.startswith("{"):
            items = rest.strip("{}").split(",")
        else:
            items = []
            for child in lines[i + 1:]:
                if child.strip() and not child.startswith((" ", "\t")):
                    break
                items.append(child.split("#")[0])
        return dict(item.split(":", 1) for item in items if ":" in item)
    return {}


def model_shape(config_text, path):
    """{"n_head": H, "n_embd": C} of the configuration text read from `path` (named in errors)."""
    mapping = {k.strip(): v.strip() for k, v in _model_mapping(config_text).items()}
    shape = {}
    for key, default in DEFAULTS.items():
        try:
            shape[key] = int(mapping.get(key, default))
        except ValueError:
            raise AnalysisError(path, f"/@config: model.{key}", f"not an integer: {mapping[key]!r}")
    return shape
