"""CIESS benchmark suite: shared substrate (data, masks, models, training, evaluation) and CIESS.

Modules that import RecBole import ``ciess.compat`` first (it fixes RecBole 1.2.1 on today's
stack). The package itself stays light so that bookkeeping steps start fast.
"""

__version__ = "0.1.0"
