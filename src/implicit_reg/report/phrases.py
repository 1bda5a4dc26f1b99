"""Configuration values as LaTeX phrases: numbers, grids and lists for the report's setup text.

:mod:`implicit_reg.report.setup_text` writes every setup statement of the report (sizes, grids,
depths, inits, learning rates, seeds, caps, solvers) from the configuration; the helpers here
turn one value or one list of values into running text, so that the same value reads the same
wherever it is stated.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["as_list", "count_word", "grid_phrase", "join_words", "options_phrase", "plural", "tex_number",
           "values_phrase"]

#: spelled out in running text ("three seeds"), as the papers write small counts
_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
          9: "nine", 10: "ten", 11: "eleven", 12: "twelve"}


def as_list(value: Any) -> list:
    """A sweep value as a list (a scalar is a one-element axis)."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _is_power_of_ten(x: float) -> bool:
    return x > 0 and math.isclose(10 ** round(math.log10(x)), x, rel_tol=1e-9)


def tex_number(x: Any, plain: bool = False) -> str:
    """One number in math mode: ``$3500$``, ``$10{,}000$``, ``$5\\cdot10^{4}$``, ``$10^{-3}$``, ``$0.05$``.

    Integers below 10^5 are written out (thousands grouped from 10^4 on); larger round
    integers and numbers below 10^-2 as a mantissa of at most three digits times a power of
    ten, and so are powers of ten below 0.1 (``$10^{-2}$``) unless ``plain``.

    Parameters
    ----------
    x
        An int or float.
    plain
        Write numbers from 10^-2 on as decimals (``$0.01$``), to match others in a list.

    Returns
    -------
    str
        LaTeX in ``$...$``.
    """
    x = float(x)
    if x == 0:
        return "$0$"
    sign = "-" if x < 0 else ""
    ax = abs(x)
    if ax.is_integer() and ax < 1e5:
        digits = str(int(ax))
        if ax >= 1e4:
            digits = f"{int(ax):,}".replace(",", "{,}")
        return f"${sign}{digits}$"
    if 1e-2 <= ax < 1e5 and (plain or ax >= 0.1 or not _is_power_of_ten(ax)):
        return f"${sign}{ax:.4g}$"
    exponent = math.floor(math.log10(ax))
    mantissa = float(f"{ax / 10 ** exponent:.3g}")
    if mantissa >= 10:  # rounding carried into the next decade
        mantissa, exponent = mantissa / 10, exponent + 1
    power = f"10^{{{exponent}}}"
    if mantissa == 1:
        return f"${sign}{power}$"
    return f"${sign}{mantissa:g}\\cdot{power}$"


def join_words(items: Sequence[str], last: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {last} " + items[-1]


def count_word(n: int) -> str:
    """``three`` for 3 (one to twelve), else the digits."""
    return _WORDS.get(int(n), str(n))


def plural(n: int, one: str, many: str | None = None, words: bool = False) -> str:
    """``1 seed``, ``3 seeds`` (``three seeds`` with ``words``)."""
    count = count_word(n) if words else str(n)
    return f"{count} {one if int(n) == 1 else (many or one + 's')}"


def _is_arithmetic(values: Sequence[float]) -> bool:
    steps = {round(b - a, 9) for a, b in zip(values, values[1:])}
    return len(values) >= 4 and len(steps) == 1 and steps.pop() > 0


def grid_phrase(values: Iterable[Any]) -> str:
    """A grid of numbers: ``$1000$ to $3500$ in steps of $250$`` when evenly spaced (4 or more
    values; ``..., and $511$`` when only the last value breaks the step), else every value
    (``$120$ and $200$``), in the configuration's order."""
    values = [float(v) for v in values]
    if _is_arithmetic(values):
        return f"{tex_number(values[0])} to {tex_number(values[-1])} in steps of {tex_number(values[1] - values[0])}"
    if _is_arithmetic(values[:-1]) and values[-1] > values[-2]:  # a grid ending at the largest possible n
        return f"{grid_phrase(values[:-1])}, and {tex_number(values[-1])}"
    return join_words([tex_number(v) for v in values])


def _plain(values: Sequence[float]) -> bool:
    """Decimals for a list with a value that is no power of ten and none below 10^-2 (0.01, 0.05, 0.1)."""
    nonzero = [abs(v) for v in values if v]
    return all(v >= 1e-2 for v in nonzero) and not all(_is_power_of_ten(v) for v in nonzero)


def values_phrase(values: Iterable[Any], last: str = "and") -> str:
    """Every value, in the configuration's order, written alike: ``$10^{-2}$ and $10^{-3}$``,
    ``$0$, $0.01$ and $0.05$``, ``$10^{-2}$ and $3\\cdot10^{-3}$``."""
    values = [float(v) for v in values]
    plain = _plain(values)
    return join_words([tex_number(v, plain) for v in values], last)


def options_phrase(options: dict[str, Any]) -> str:
    """Solver options as ``\\texttt{eps\\_abs} $10^{-6}$, \\texttt{max\\_iters} $20000$``, in key order."""
    parts = []
    for key, value in options.items():
        name = "\\texttt{" + str(key).replace("_", "\\_") + "}"
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (int, float)):
            text = tex_number(value)
        else:
            text = "\\texttt{" + str(value).replace("_", "\\_") + "}"
        parts.append(f"{name} {text}")
    return ", ".join(parts)
