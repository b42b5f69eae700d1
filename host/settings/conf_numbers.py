"""Numbers in a LoadGen conf file, read as LoadGen 6.0.17 reads them (glibc's strtoul,
strtoull and strtod) and as a person reads them, so the two can be compared word by word.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

from edgeperf.settings.requested import U64

_STRTOUL_WHOLE = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_STRTOD_WHOLE = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
    r"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN](?:\([0-9A-Za-z_]*\))?)")
_STRTOULL_PREFIX = re.compile(r"([+-]?)(?:0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*))")
_DECIMAL_INT = re.compile(r"[+-]?[0-9]+")


def loadgen_number(word: str) -> bool:
    """True when LoadGen's parser takes ``word`` as a value (strtoul or strtod reads it all)."""
    return bool(_STRTOUL_WHOLE.fullmatch(word) or _STRTOD_WHOLE.fullmatch(word))


def loadgen_u64(text: str) -> int:
    """strtoull(text, nullptr, 0) as glibc computes it: the longest integer prefix (0x hex,
    leading-0 octal, decimal), 0 when there is none, ULLONG_MAX on overflow, a negative
    number wrapped modulo 2**64."""
    m = _STRTOULL_PREFIX.match(text)
    if not m:
        return 0
    sign, hexa, octal, decimal = m.groups()
    v = int(hexa, 16) if hexa else int(octal, 8) if octal else int(decimal)
    if v >= U64:
        return U64 - 1
    return (-v) % U64 if sign == "-" else v


def written(text: str) -> int | Decimal | float:
    """The number a value says, read as a person reads it: decimal digits are decimal (010
    is ten), 0x is hex, decimals exactly (a Decimal), hex floats, inf and nan."""
    if _DECIMAL_INT.fullmatch(text):
        return int(text, 10)
    if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]+", text):
        return int(text, 16)
    if re.match(r"[+-]?0[xX]", text):
        return strtod(text)
    if "n" in text.lower():  # inf, infinity, nan, nan(...)
        return math.nan if "a" in text.lower() else float(text)
    try:
        return Decimal(text)
    except InvalidOperation:  # an exponent past Decimal's range: 0 or inf as a double
        return float(text)


def strtod(text: str) -> float:
    """strtod(text) for a word LoadGen's parser took: the correctly rounded double, +-inf
    past the range, hex floats included."""
    sign = -1.0 if text.startswith("-") else 1.0
    try:
        if re.match(r"[+-]?0[xX]", text):
            return float.fromhex(text)
        return float(text)  # rounds as strtod does; inf, infinity, nan as well
    except OverflowError:
        return math.copysign(math.inf, sign)
    except ValueError:  # nan(n-char-sequence), which float() does not read
        return math.copysign(math.nan, sign)
