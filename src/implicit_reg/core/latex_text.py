"""Plain text to LaTeX: escaping and compact numbers (shared by the report modules)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["format_number", "format_plain", "latex_escape"]

# --------------------------------------------------------------------------
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    # a few non-Latin-1 characters that appear in descriptions of these papers
    "×": r"$\times$",
    "÷": r"$\div$",
    "±": r"$\pm$",
    "·": r"$\cdot$",
    "⋯": r"$\cdots$",
    "…": r"\dots{}",
    "≈": r"$\approx$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "≠": r"$\neq$",
    "→": r"$\to$",
    "‖": r"$\|$",
    "−": r"$-$",
    "–": "--",
    "—": "---",
    "‘": "`",
    "’": "'",
    "“": "``",
    "”": "''",
    "²": r"$^2$",
    "³": r"$^3$",
    "α": r"$\alpha$",
    "β": r"$\beta$",
    "γ": r"$\gamma$",
    "δ": r"$\delta$",
    "ε": r"$\varepsilon$",
    "η": r"$\eta$",
    "λ": r"$\lambda$",
    "μ": r"$\mu$",
    "σ": r"$\sigma$",
    "τ": r"$\tau$",
    "∞": r"$\infty$",
}


def latex_escape(text: Any) -> str:
    """Escape text for LaTeX (pdflatex, T1).

    Parameters
    ----------
    text
        Any value (rendered with ``str``).

    Returns
    -------
    str
        TeX special characters escaped, the Greek letters and symbols of the table
        above in math mode, control characters as spaces, other characters beyond
        Latin-1 as ``?``.
    """
    out = []
    for ch in str(text):
        if ch in _LATEX_SPECIAL:
            out.append(_LATEX_SPECIAL[ch])
        elif ord(ch) < 32:
            out.append(" ")
        elif ord(ch) < 128 or ch.isalpha() and ord(ch) < 256:
            out.append(ch)
        else:
            out.append("?")
    return "".join(out)


def format_number(x: Any, digits: int = 3, math_mode: bool = True) -> str:
    """Compact number for tables: ``0.0123``, ``45.6``, ``$1.23\\times10^{-4}$``.

    Values with magnitude in [1e-2, 1e4) use ``digits`` significant digits in
    plain notation; others use a mantissa times a power of ten.  Integral
    values below 1e6 are printed as integers.  NaN/None gives ``--``.

    Parameters
    ----------
    x
        A number (or None).
    digits : int
        Significant digits.
    math_mode : bool
        Wrap powers of ten, infinities and negative numbers in ``$…$``.

    Returns
    -------
    str
    """
    if x is None:
        return "--"
    x = float(x)
    if math.isnan(x):
        return "--"
    if math.isinf(x):
        s = r"\infty" if x > 0 else r"-\infty"
        return f"${s}$" if math_mode else s
    if x == 0:
        return "0"
    ax = abs(x)
    if x.is_integer() and ax < 1e6:
        s = str(int(x))
        return f"${s}$" if (math_mode and x < 0) else s
    if 1e-2 <= ax < 1e4:
        s = f"{x:.{digits}g}"
        if "e" not in s:
            return f"${s}$" if (math_mode and x < 0) else s
    mant, exp = f"{x:.{digits - 1}e}".split("e")
    mant = mant.rstrip("0").rstrip(".") if "." in mant else mant
    s = rf"{mant}\times10^{{{int(exp)}}}"
    if mant in ("1", "-1"):
        s = ("-" if mant.startswith("-") else "") + rf"10^{{{int(exp)}}}"
    return f"${s}$" if math_mode else s


def format_plain(x: Any, digits: int = 2) -> str:
    """Number for running text without math mode: ``0.036``, ``2.3e-3``, ``--`` for NaN.

    Parameters
    ----------
    x
        A number (or None).
    digits : int
        Significant digits.

    Returns
    -------
    str
    """
    if x is None:
        return "--"
    x = float(x)
    if math.isnan(x):
        return "--"
    if x == 0 or (x.is_integer() and abs(x) < 1e6):
        return str(int(x))
    if 1e-2 <= abs(x) < 1e4:
        return f"{x:.{digits}g}"
    mant, exp = f"{x:.{digits - 1}e}".split("e")
    mant = mant.rstrip("0").rstrip(".") if "." in mant else mant
    return f"{mant}e{int(exp)}"
