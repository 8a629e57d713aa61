"""rkdo-tune: distributed hyperparameter studies of RKDO against I-Con.

The public API is small; everything else lives in private-by-convention modules.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
