"""Numbers as LoadGen 6.0.17 prints them: C++ stream defaults (``%g``) for doubles in the
detail log and on the summary's "Samples per second" line, two decimals where LoadGen calls
DoubleToString, and a NaN or an infinity as glibc spells it, bare: nan, -nan, inf, -inf.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def _c_nonfinite(x: float) -> str | None:
    """glibc's spelling of a NaN or an infinity (its printf, so C++ streams): nan, -nan
    (sign bit set), inf, -inf; None for a finite x."""
    if math.isnan(x):
        return "-nan" if math.copysign(1.0, x) < 0 else "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return None


def fmt_g(x: float) -> str:
    """A double as C++ ``ostream << double`` prints it (6 significant digits; nan, -nan, inf).

    LoadGen 6.0.17 logs every double of the detail log this way, bare in its JSON lines: its
    ``ArgValueTransform(double)`` that would write NaN/Infinity is defined in logging.cc but
    never declared to the code that logs, so the generic template streams the value.
    """
    return _c_nonfinite(x) or f"{x:g}"


def fmt_fixed(x: float, precision: int = 2) -> str:
    """LoadGen's DoubleToString: ``std::fixed`` with ``precision`` decimals (nan, -nan, inf)."""
    return _c_nonfinite(x) or f"{x:.{precision}f}"


def json_value(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return fmt_g(float(v))
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def text_value(v: Any) -> str:
    """A value as LoadGen's summary prints it: bools as 0/1, doubles with %g."""
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, float):
        return fmt_g(v)
    return str(v)
