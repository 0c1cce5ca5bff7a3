"""CIESS benchmark suite: shared substrate (data, masks, models, training, evaluation) and CIESS."""
from ciess import compat as _compat  # noqa: F401  (must run before any recbole import)

__version__ = "0.1.0"
