"""Reading the media-quality figures phone systems write as text (FreeSWITCH's channel
variables, Asterisk's RTPAUDIOQOS fields)."""

from __future__ import annotations

import math


def finite_number(text: str | None) -> float | None:
    """``text`` as a finite float; None when absent, not a number, infinite or NaN (the
    caller decides what a missing figure means)."""
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None
