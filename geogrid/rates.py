"""Rates, one definition each, computed by one function everywhere.

* resolution rate = resolved ÷ received (the article's 84 ÷ 86 = 0.977)
* 结案率 (closure rate) = closed ÷ due
* on-time rate = closed within SLA ÷ due

Rates are fractions 0–1 in data, rounded half-up to :data:`RATE_DECIMALS` places; ``None``
when the denominator is zero (no rate, rather than a misleading 0 or 1). Percentages are for
screens only (:func:`percent`).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

RATE_DECIMALS = 3


def rate(numerator: int, denominator: int) -> float | None:
    """``numerator ÷ denominator`` rounded half-up to 3 decimals; None if the denominator is 0."""
    if numerator < 0 or denominator < 0:
        raise ValueError("counts cannot be negative")
    if denominator == 0:
        return None
    if numerator > denominator:
        raise ValueError(f"{numerator} of {denominator}: a rate cannot exceed 1")
    q = Decimal(numerator) / Decimal(denominator)
    return float(q.quantize(Decimal(1).scaleb(-RATE_DECIMALS), rounding=ROUND_HALF_UP))


def percent(value: float | None) -> str:
    """A rate for display: ``0.977`` → ``"97.7%"``; ``None`` → ``"–"``."""
    return "–" if value is None else f"{value * 100:.1f}%"
