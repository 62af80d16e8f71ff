"""Plain values out of pandas and numpy, for JSON and for the database."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["plain"]


def plain(value: Any) -> Any:
    """``value`` as plain Python: numpy scalars unwrapped; None, NaN, ±inf, NA, NaT → None."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):  # lists and arrays: not a missing scalar
        pass
    return value
